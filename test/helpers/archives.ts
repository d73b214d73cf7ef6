// Hostile workspace archives, made in the test: each one small on the wire and
// ruinous to a hub that trusts it.
import { gzipSync } from 'node:zlib';
import * as tar from 'tar-stream';

type Entry = Partial<tar.Header> & { name: string; body?: string | Buffer };

export async function tarOf(entries: Iterable<Entry>): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of pack) chunks.push(c as Buffer);
  })();
  for (const { body, ...h } of entries) {
    await new Promise<void>((resolve, reject) => pack.entry(h, body ?? '', (err) => (err ? reject(err) : resolve())));
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** One entry named a/a/a/… `levels` deep (a pax header carries the long name): a few hundred bytes gzipped at 100,000 levels. */
export async function deepNameBomb(levels = 100_000): Promise<Buffer> {
  return gzipSync(await tarOf([{ name: Array(levels).fill('a').join('/'), body: 'x' }]), { level: 9 });
}

/** `count` tiny files. */
export async function manyEntries(count: number): Promise<Buffer> {
  function* entries() {
    for (let i = 0; i < count; i++) yield { name: `f${i}` };
  }
  return gzipSync(await tarOf(entries()), { level: 9 });
}

/** One file of `bytes` zeros: a few kilobytes gzipped. */
export async function gzipBomb(bytes: number): Promise<Buffer> {
  return gzipSync(await tarOf([{ name: 'zeros', body: Buffer.alloc(bytes) }]), { level: 9 });
}

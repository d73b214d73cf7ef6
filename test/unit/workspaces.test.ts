import { createReadStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createGunzip, gzipSync } from 'node:zlib';
import * as tar from 'tar-stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WorkspaceStore } from '../../hub/workspaces/uploads.js';
import { deepNameBomb, manyEntries, tarOf as packOf } from '../helpers/archives.js';

type Entry = Partial<tar.Header> & { name: string; body?: string };

async function tarOf(entries: Entry[]): Promise<Buffer> {
  const pack = tar.pack();
  for (const { body, ...h } of entries) pack.entry(h, body ?? '');
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function entriesOf(stream: Readable): Promise<Array<{ name: string; uid: number; gid: number; mode?: number; body: string }>> {
  const extract = tar.extract();
  stream.pipe(extract);
  const out = [];
  for await (const entry of extract) {
    let body = '';
    for await (const c of entry) body += c;
    out.push({ name: entry.header.name, uid: entry.header.uid, gid: entry.header.gid, mode: entry.header.mode, body });
  }
  return out;
}

/** An upload as stored: the gzipped tar a runtime fetches and unpacks as its own user. */
const stored = (id: string): Readable => createReadStream(store.path(id)).pipe(createGunzip());

let dir: string;
let store: WorkspaceStore;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'da-ws-'));
  store = new WorkspaceStore(dir, { maxBytes: 64 * 1024 });
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('workspace uploads', () => {
  const files: Entry[] = [
    { name: './', type: 'directory' },
    { name: './src/', type: 'directory' },
    { name: './src/a.txt', body: 'alpha\n', uid: 501, mode: 0o4755 },
    { name: './link', type: 'symlink', linkname: 'src/a.txt' },
  ];

  it("stores a gzipped and a plain tar of the same files once, without set-id bits or its owners' ids", async () => {
    const plain = await tarOf(files);
    const a = await store.save(Readable.from(gzipSync(plain)), 'application/gzip');
    const b = await store.save(Readable.from(plain), 'application/x-tar');
    expect(a.id).toMatch(/^[0-9a-f]{64}$/);
    expect(b.id).toBe(a.id);
    expect(a.entries).toBe(3);
    const entries = await entriesOf(stored(a.id));
    expect(entries.map((e) => e.mode)).toEqual([0o755, 0o755, 0o644]);
    expect(entries.map(({ mode: _m, ...e }) => e)).toEqual([
      { name: 'src', uid: 0, gid: 0, body: '' },
      { name: 'src/a.txt', uid: 0, gid: 0, body: 'alpha\n' },
      { name: 'link', uid: 0, gid: 0, body: '' },
    ]);
  });

  it.each([
    ['../escape', { name: '../escape', body: 'x' }, /"..\/escape" points outside the workspace/],
    ['an absolute path', { name: '/etc/passwd', body: 'x' }, /"\/etc\/passwd" points outside the workspace/],
    ['a device', { name: 'dev', type: 'character-device' as const, devmajor: 1, devminor: 3 }, /"dev" is a character-device/],
    ['a file below a symlink of the archive', { name: 'etc/passwd', body: 'x' }, /"etc\/passwd" lies below the symlink "etc"/],
  ])('refuses %s, naming the entry', async (_what, entry, message) => {
    const body = await tarOf([{ name: 'ok.txt', body: 'fine' }, { name: 'etc', type: 'symlink', linkname: '/etc' }, entry]);
    await expect(store.save(Readable.from(body), 'application/x-tar')).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
      message: expect.stringMatching(message),
    });
  });

  it('refuses an archive past the size limit, packed or unpacked', async () => {
    const big = await tarOf([{ name: 'big', body: 'z'.repeat(200 * 1024) }]);
    await expect(store.save(Readable.from(big), 'application/x-tar')).rejects.toMatchObject({ code: 'BODY_TOO_LARGE' });
    // Compresses to a few hundred bytes: the limit holds on what it unpacks to.
    await expect(store.save(Readable.from(gzipSync(big)), 'application/gzip')).rejects.toMatchObject({ code: 'BODY_TOO_LARGE' });
  });

  it('says what it takes when the body is not a tar or has the wrong type', async () => {
    await expect(store.save(Readable.from(Buffer.from('hello')), 'application/gzip')).rejects.toMatchObject({
      message: expect.stringMatching(/not a readable gzipped tar archive/),
    });
    await expect(store.save(Readable.from(Buffer.from('{}')), 'application/json')).rejects.toMatchObject({
      message: expect.stringMatching(/Content-Type application\/gzip or application\/x-gzip or application\/x-tar, not application\/json/),
    });
    expect(() => store.path('f'.repeat(64))).toThrow(/upload it first with POST \/v1\/workspaces/);
  });
});

describe('archives of a commit', () => {
  it('drop their top folder with strip, so the files land in /workspace itself', async () => {
    const body = await tarOf([
      { name: 'octo-repo-0123abc/', type: 'directory' },
      { name: 'octo-repo-0123abc/README.md', body: '# hi\n' },
    ]);
    const saved = await store.save(Readable.from(gzipSync(body)), 'application/gzip', { strip: 1 });
    expect((await entriesOf(stored(saved.id))).map((e) => e.name)).toEqual(['README.md']);
  });
});

describe('hostile archives', () => {
  const tarOf = packOf;
  const limited = () => new WorkspaceStore(dir, { maxBytes: 64 * 1024 * 1024, maxNameBytes: 4096, maxDepth: 64, maxEntries: 1000 });

  it('refuses the 352-byte archive whose one name is 100,000 levels deep, in a moment', async () => {
    const bomb = await deepNameBomb();
    expect(bomb.length).toBeLessThan(400);
    const started = Date.now();
    await expect(limited().save(Readable.from(bomb), 'application/gzip')).rejects.toMatchObject({
      code: 'ARCHIVE_LIMIT',
      status: 400,
      message: expect.stringMatching(/has a name of 199999 bytes; the limit is 4096 \(DOCKER_AGENT_MAX_ENTRY_NAME_BYTES\)/),
    });
    expect(Date.now() - started).toBeLessThan(5000);
    // Making the bomb takes seconds on a busy machine: the refusal above is what is timed.
  }, 30_000);

  it('refuses nesting one level past the depth limit, and takes it at the limit', async () => {
    const at = await tarOf([{ name: Array(64).fill('d').join('/'), body: 'x' }]);
    await expect(limited().save(Readable.from(at), 'application/x-tar')).resolves.toMatchObject({ entries: 1 });
    const past = await tarOf([{ name: Array(65).fill('d').join('/'), body: 'x' }]);
    await expect(limited().save(Readable.from(past), 'application/x-tar')).rejects.toMatchObject({
      code: 'ARCHIVE_LIMIT',
      message: expect.stringMatching(/is 65 levels deep; the limit is 64 \(DOCKER_AGENT_MAX_ENTRY_DEPTH\)/),
    });
  });

  it('refuses an archive with more entries than the limit', async () => {
    await expect(limited().save(Readable.from(await manyEntries(1001)), 'application/gzip')).rejects.toMatchObject({
      code: 'ARCHIVE_LIMIT',
      message: expect.stringMatching(/"f1000" is entry number 1001; an archive may hold 1000 \(DOCKER_AGENT_MAX_WORKSPACE_ENTRIES\)/),
    });
  });

  it('refuses a symlink whose target is longer than the name limit', async () => {
    const body = await tarOf([{ name: 'l', type: 'symlink', linkname: 'x'.repeat(5000) }]);
    await expect(limited().save(Readable.from(body), 'application/x-tar')).rejects.toMatchObject({
      code: 'ARCHIVE_LIMIT',
      message: expect.stringMatching(/has a link target of 5000 bytes/),
    });
  });

  it('still finds an entry below a symlink many levels down', async () => {
    const body = await tarOf([
      { name: 'a/b/c', type: 'symlink', linkname: '/etc' },
      { name: 'a/b/c/d/passwd', body: 'x' },
    ]);
    await expect(limited().save(Readable.from(body), 'application/x-tar')).rejects.toMatchObject({
      message: expect.stringMatching(/lies below the symlink "a\/b\/c"/),
    });
  });
});

// Large output: every byte arrives, in order, while the hub's memory stays bounded.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestHub, type TestHub } from '../helpers/hub.js';

let t: TestHub;
beforeAll(async () => {
  t = await startTestHub();
});
afterAll(() => t?.close());

function expectedSeq(n: number): { sha: string; bytes: number } {
  const h = createHash('sha256');
  let bytes = 0;
  let chunk = '';
  for (let i = 1; i <= n; i++) {
    chunk += `${i}\n`;
    if (chunk.length > 65536) {
      h.update(chunk);
      bytes += chunk.length;
      chunk = '';
    }
  }
  h.update(chunk);
  return { sha: h.digest('hex'), bytes: bytes + chunk.length };
}

describe('output of any size', () => {
  it('streams 50 MB byte-exact and in order', async () => {
    const lines = 6_500_000; // `seq 1 6500000` prints 51.9 MB
    const expected = expectedSeq(lines);
    expect(expected.bytes).toBeGreaterThan(50_000_000);
    const job = await t.client.createJob({ run: `seq 1 ${lines}; echo done >&2`, timeout: 300 });

    const h = createHash('sha256');
    let bytes = 0;
    let peakRss = 0;
    let final = '';
    for await (const e of t.client.events(job.id)) {
      if (e.type === 'stdout') {
        expect(e.encoding).toBeUndefined();
        h.update(e.data);
        bytes += Buffer.byteLength(e.data);
      }
      if (e.type === 'status') final = e.state;
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
    }
    expect(final).toBe('succeeded');
    expect(bytes).toBe(expected.bytes);
    expect(h.digest('hex')).toBe(expected.sha);
    // Hub and client share this process: 50 MB held anywhere (or several copies of it) would show here.
    expect(peakRss).toBeLessThan(400 * 1024 * 1024);
  });

  it('keeps bytes that are not UTF-8 exact, as base64', async () => {
    const job = await t.client.createJob({ run: "printf 'caf\\xc3\\xa9 \\xff\\xfe\\n'" });
    const chunks: Buffer[] = [];
    for await (const e of t.client.events(job.id)) {
      if (e.type === 'stdout') chunks.push(Buffer.from(e.data, e.encoding === 'base64' ? 'base64' : 'utf8'));
    }
    expect(Buffer.concat(chunks)).toEqual(Buffer.from([0x63, 0x61, 0x66, 0xc3, 0xa9, 0x20, 0xff, 0xfe, 0x0a]));
  });
});

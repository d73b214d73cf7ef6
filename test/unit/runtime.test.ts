import { describe, expect, it } from 'vitest';
import { decodeOutputFrame, encodeOutputFrame } from '../../schemas/agent-frame.js';
import { backoffDelay } from '../../runtime/backoff.js';
import { incompleteUtf8Tail, Utf8Chunker } from '../../runtime/utf8.js';

describe('UTF-8 chunking', () => {
  it('holds back the bytes of a character cut in two and completes it with the next chunk', () => {
    const text = Buffer.from('añ€😀z');
    for (let cut = 0; cut <= text.length; cut++) {
      const c = new Utf8Chunker();
      const parts = [c.push(text.subarray(0, cut)), c.push(text.subarray(cut)), c.flush()];
      for (const p of parts) expect(Buffer.from(p.toString('utf8'))).toEqual(p); // each part valid on its own
      expect(Buffer.concat(parts)).toEqual(text);
    }
  });

  it('counts only an unfinished character as a tail', () => {
    expect(incompleteUtf8Tail(Buffer.from('abc'))).toBe(0);
    expect(incompleteUtf8Tail(Buffer.from([0x61, 0xe2, 0x82]))).toBe(2);
    expect(incompleteUtf8Tail(Buffer.from([0xe2, 0x82, 0xac]))).toBe(0);
    expect(incompleteUtf8Tail(Buffer.from([0xf0, 0x9f, 0x98]))).toBe(3);
    expect(incompleteUtf8Tail(Buffer.from([0xff]))).toBe(0);
  });
});

describe('output frames', () => {
  it('carry stream, counter, step and bytes unchanged', () => {
    const data = Buffer.from([0, 1, 2, 255, 254]);
    const f = decodeOutputFrame(encodeOutputFrame({ stream: 'stderr', n: 4_000_000_000, step: 65535, data }));
    expect(f).toEqual({ stream: 'stderr', n: 4_000_000_000, step: 65535, data });
  });

  it('reject frames that are too short or of an unknown stream', () => {
    expect(() => decodeOutputFrame(Buffer.alloc(3))).toThrow(/too short/);
    expect(() => decodeOutputFrame(Buffer.from([9, 0, 0, 0, 1, 0, 0]))).toThrow(/unknown stream 9/);
  });
});

describe('reconnect backoff', () => {
  it('grows exponentially up to its cap, jittered below the ceiling', () => {
    const top = (attempt: number) => backoffDelay(attempt, { baseMs: 100, maxMs: 3000, random: () => 0.999999 });
    expect([0, 1, 2, 3, 4, 5, 10].map(top)).toEqual([100, 200, 400, 800, 1600, 3000, 3000]);
    expect(backoffDelay(5, { baseMs: 100, maxMs: 3000, random: () => 0 })).toBe(0);
    expect(backoffDelay(2, { baseMs: 100, maxMs: 3000, random: () => 0.5 })).toBe(200);
  });
});

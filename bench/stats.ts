// Timing and summaries for the benchmark: medians and p99 of repeated runs.

export interface Summary {
  median: number;
  p99: number;
  n: number;
}

export function summarize(xs: number[]): Summary {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!;
  return { median: at(0.5), p99: at(0.99), n: s.length };
}

export async function time(fn: () => Promise<unknown> | unknown): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** `fn` run `n` times one after another, each timed. */
export async function rounds(n: number, fn: () => Promise<unknown> | unknown): Promise<Summary> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) times.push(await time(fn));
  return summarize(times);
}

/** `total` runs of `fn`, `concurrency` at a time: runs per second. */
export async function throughput(total: number, concurrency: number, fn: () => Promise<unknown>): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        next++;
        await fn();
      }
    }),
  );
  return total / ((performance.now() - t0) / 1000);
}

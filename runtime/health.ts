// Memory and CPU use of the whole container, read from its cgroup (v1 or v2), so
// the hub sees what the job's processes use, not only the runtime.
import { readFileSync } from 'node:fs';

function readNumber(path: string): number | undefined {
  try {
    const n = Number(readFileSync(path, 'utf8').trim());
    return Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

function cpuNanos(): number | undefined {
  const v1 = readNumber('/sys/fs/cgroup/cpuacct/cpuacct.usage');
  if (v1 !== undefined) return v1;
  try {
    const stat = readFileSync('/sys/fs/cgroup/cpu.stat', 'utf8');
    const usec = /usage_usec (\d+)/.exec(stat)?.[1];
    return usec ? Number(usec) * 1000 : undefined;
  } catch {
    return undefined;
  }
}

function memoryBytes(): number {
  return readNumber('/sys/fs/cgroup/memory/memory.usage_in_bytes') ?? readNumber('/sys/fs/cgroup/memory.current') ?? process.memoryUsage().rss;
}

/** Returns a sampler; each call reports CPU use since the previous call. */
export function healthSampler(now: () => bigint = process.hrtime.bigint) {
  let lastCpu = cpuNanos() ?? Number(process.cpuUsage().user) * 1000;
  let lastWall = now();
  return () => {
    const cpu = cpuNanos() ?? Number(process.cpuUsage().user) * 1000;
    const wall = now();
    const elapsed = Number(wall - lastWall);
    const cpuPercent = elapsed > 0 ? Math.max(0, ((cpu - lastCpu) / elapsed) * 100) : 0;
    lastCpu = cpu;
    lastWall = wall;
    return { memoryBytes: Math.round(memoryBytes()), cpuPercent: Math.round(cpuPercent * 10) / 10 };
  };
}

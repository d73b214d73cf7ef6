// GET /health from a report the hub makes itself, in the background: every few
// seconds (DOCKER_AGENT_HEALTH_CHECK_SECONDS) one look at the engine and at the
// free space of the hub's data folder and the engine's data root. A caller, with
// or without a token, only reads the last report, so nobody can make the hub work
// by asking. The same look decides whether the hub takes new work (the free-space
// floor, DOCKER_AGENT_MIN_FREE_BYTES).
import { existsSync, statfsSync } from 'node:fs';
import type { Backend, EngineInfo, EngineStorage, NetworkStatus } from './backend/types.js';
import { HubError } from './platform/errors.js';
import { withTimeout } from './platform/timeout.js';
import type { DiskHealth, HealthReport, PoolState } from '../schemas/live.js';

/** A hung engine makes the report say so instead of holding the next one up. */
const ENGINE_TIMEOUT_MS = 3000;

export interface HealthDeps {
  backend: Pick<Backend, 'info' | 'storage'>;
  dataDir: string;
  intervalMs: number;
  /** Free bytes below which the hub takes no new work (DOCKER_AGENT_MIN_FREE_BYTES); 0: no floor. */
  minFree: number;
  /** What a container may write, and who enforces it. */
  disk: Pick<DiskHealth, 'limit' | 'enforcement'>;
  network?: NetworkStatus;
  pool: () => Record<string, PoolState>;
  log: (msg: string) => void;
  /** Free bytes of the file system holding `path` (statfs), or undefined when the hub cannot see the path. */
  freeBytes?: (path: string) => number | undefined;
}

/** What one look found, before it is worded as the report. */
export interface HealthInputs {
  checkedAt: string;
  engine: EngineInfo | { error: string };
  /** The engine's data root and its free bytes (undefined: not a path the hub can see). */
  engineRoot?: { path: string; free?: number };
  network?: NetworkStatus;
  pool: Record<string, PoolState>;
  minFree: number;
  disk: Pick<DiskHealth, 'limit' | 'enforcement'>;
  dataDir: { path: string; free?: number };
}

export function freeBytes(path: string): number | undefined {
  // The engine may be on another host: its data root is then no path here (or some other one's).
  if (!existsSync(path)) return undefined;
  try {
    const s = statfsSync(path);
    return s.bavail * s.bsize;
  } catch {
    return undefined;
  }
}

/** The floor a place is below, worded for a refusal and for /health; undefined when none is. */
function belowFloor(where: string, path: string, free: number | undefined, floor: number): string | undefined {
  if (!floor || free === undefined || free >= floor) return undefined;
  return `${where} (${path}) has ${free} bytes free, below the hub's floor of ${floor} (DOCKER_AGENT_MIN_FREE_BYTES)`;
}

/** The report and its HTTP status: 200 while the engine answers (`degraded` says what the hub lacks), else 503. */
export function healthReport(i: HealthInputs): { status: 200 | 503; body: HealthReport } {
  const root = i.engineRoot?.path;
  const rootFree = i.engineRoot?.free;
  const problems = [
    belowFloor("the hub's data folder", i.dataDir.path, i.dataDir.free, i.minFree),
    root ? belowFloor("the engine's data root", root, rootFree, i.minFree) : undefined,
  ].filter((p): p is string => p !== undefined);
  const disk: DiskHealth = {
    ...i.disk,
    minFree: i.minFree,
    dataDir: i.dataDir,
    ...(root
      ? {
          engineRoot:
            rootFree !== undefined
              ? { path: root, free: rootFree }
              : { path: root, unchecked: 'the path is not on the hub’s host (the engine is elsewhere): its free space is not checked' },
        }
      : {}),
    ...(problems.length ? { problem: `${problems.join('; ')}: the hub takes no new work until space is freed` } : {}),
  };
  if ('error' in i.engine) {
    return { status: 503, body: { status: 'degraded', checkedAt: i.checkedAt, engine: { reachable: false, error: i.engine.error }, disk } };
  }
  const { network } = i;
  const nodeDown = (i.engine.nodes ?? []).some((n) => n.state !== 'ready');
  const degraded = problems.length > 0 || (network !== undefined && !network.isolated) || nodeDown;
  return {
    status: 200,
    body: {
      status: degraded ? 'degraded' : 'ok',
      checkedAt: i.checkedAt,
      engine: i.engine,
      pool: i.pool,
      disk,
      ...(network ? { network: network.isolated ? { name: network.name, isolated: true } : network } : {}),
    },
  };
}

export class HealthMonitor {
  private last?: { status: 200 | 503; body: HealthReport };
  private low?: string;
  private storage?: EngineStorage;
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;

  constructor(private readonly deps: HealthDeps) {}

  /** The last report; until the first look, `starting`. */
  current(): { status: 200 | 503; body: HealthReport } {
    if (!this.last) return { status: 503, body: { status: 'starting' } };
    // The pool is the hub's own memory, free to read: shown as it is now, not as it was at the last look.
    return this.last.body.pool ? { status: this.last.status, body: { ...this.last.body, pool: this.deps.pool() } } : this.last;
  }

  /** Refuses new work (a job, an agent, an upload) while free space is below the floor. */
  admit(what: string): void {
    if (this.low) throw new HubError('DISK_LOW', `${what} is refused: ${this.low}; free some space (POST /v1/maintenance/prune) or lower the floor`);
  }

  /** The first look (awaited before the hub listens), then one every interval until stop(). */
  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.deps.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One look; a look already under way is joined, not repeated. Never rejects. */
  refresh(): Promise<void> {
    this.running ??= this.look()
      .catch((err: Error) => this.deps.log(`health: ${err?.stack ?? err}`))
      .finally(() => (this.running = undefined));
    return this.running;
  }

  private async look(): Promise<void> {
    const { backend, dataDir } = this.deps;
    const free = this.deps.freeBytes ?? freeBytes;
    let engine: HealthInputs['engine'];
    try {
      engine = await withTimeout(backend.info(), ENGINE_TIMEOUT_MS, `the engine did not answer within ${ENGINE_TIMEOUT_MS / 1000} s`);
      // Where the engine keeps its data does not change while it runs: asked once.
      this.storage ??= await withTimeout(backend.storage(), ENGINE_TIMEOUT_MS, 'the engine did not say where it keeps its data');
    } catch (err) {
      engine = { error: (err as Error).message };
    }
    const report = healthReport({
      checkedAt: new Date().toISOString(),
      engine,
      ...(this.storage?.dataRoot ? { engineRoot: { path: this.storage.dataRoot, free: free(this.storage.dataRoot) } } : {}),
      ...(this.deps.network ? { network: this.deps.network } : {}),
      pool: this.deps.pool(),
      minFree: this.deps.minFree,
      disk: this.deps.disk,
      dataDir: { path: dataDir, free: free(dataDir) },
    });
    const low = report.body.disk?.problem;
    if (low && low !== this.low) this.deps.log(`WARNING: ${low}`);
    this.low = low;
    this.last = report;
  }
}

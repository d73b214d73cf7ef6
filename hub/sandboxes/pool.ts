// The warm pool: per profile, a set of idle sandboxes, started ahead with their
// runtimes connected and never used. A job takes one (so every job still gets a
// fresh container) and holds it from then on: the pool forgets it. The pool refills
// in the background, but only into slots no queued job is waiting for.
import { randomUUID } from 'node:crypto';
import type { Profile } from '../../schemas/types.gen.js';
import type { Backend, ContainerRef } from '../backend/types.js';
import type { HubConfig } from '../platform/config.js';
import type { ProfileRegistry } from '../profiles/registry.js';
import { Sandbox, type SandboxDeps, type SandboxHolder } from './sandbox.js';

export interface PoolSettings {
  minIdle: number;
  max: number;
  ttlMs: number;
}

interface Idle {
  id: string;
  profile: string;
  sandbox: Sandbox;
  /** When its runtime dialled in: its time to live counts from there, so a slow start on a busy engine does not use it up. */
  idleSince?: number;
}

export interface PoolDeps extends SandboxDeps {
  config: HubConfig;
  hubId: string;
  backend: Backend;
  profiles: ProfileRegistry;
  /** Slots the hub's own jobs take now, and whether any job waits for one. */
  load(): { running: number; queued: boolean };
}

/** How often idle sandboxes past their time to live are replaced. */
const SWEEP_MS = 1000;

/** The pool's settings for a profile: its own `pool`, else the hub's for the default profile; none for privileged ones. */
export function poolSettings(profile: Profile, config: HubConfig): PoolSettings | undefined {
  if (profile.privileged) return undefined;
  const own = profile.pool;
  const hubWide = profile.name === config.defaultProfile;
  const minIdle = own?.minIdle ?? (hubWide ? config.poolMinIdle : 0);
  if (!minIdle) return undefined;
  const max = Math.max(minIdle, own?.max ?? (hubWide ? (config.poolMax ?? minIdle) : minIdle));
  return { minIdle, max, ttlMs: (own?.ttl ?? config.poolTtlS) * 1000 };
}

export class WarmPool {
  private readonly idle = new Map<string, Idle>();
  private readonly sweep: NodeJS.Timeout;
  private stopped = false;

  constructor(private readonly deps: PoolDeps) {
    this.sweep = setInterval(() => this.expire(), SWEEP_MS);
    this.sweep.unref();
  }

  /** Idle sandboxes, connected or still starting. */
  get size(): number {
    return this.idle.size;
  }

  /** What /health shows: idle (connected), starting and the most kept, by profile. */
  state(): Record<string, { idle: number; starting: number; minIdle: number; max: number }> {
    const out: Record<string, { idle: number; starting: number; minIdle: number; max: number }> = {};
    for (const name of this.deps.profiles.names()) {
      const s = this.settings(name);
      if (!s) continue;
      const mine = [...this.idle.values()].filter((m) => m.profile === name);
      const online = mine.filter((m) => m.sandbox.online).length;
      out[name] = { idle: online, starting: mine.length - online, minIdle: s.minIdle, max: s.max };
    }
    return out;
  }

  /** A connected, never-used sandbox of `profile` running `image`, given to `holder`; the pool forgets it. */
  take(profile: string, image: string | undefined, holder: SandboxHolder): Sandbox | undefined {
    const m = [...this.idle.values()].find((x) => x.profile === profile && x.sandbox.online && (!image || x.sandbox.image === image));
    if (!m) return undefined;
    this.idle.delete(m.id);
    m.sandbox.handTo(holder);
    setImmediate(() => this.refill());
    return m.sandbox;
  }

  /** Starts sandboxes where a profile has fewer idle than it wants, in slots no job needs. */
  refill(): void {
    if (this.stopped) return;
    for (const name of this.deps.profiles.names()) {
      const s = this.settings(name);
      if (!s) continue;
      for (;;) {
        const waiting = [...this.idle.values()].filter((m) => m.profile === name).length;
        const { running, queued } = this.deps.load();
        // Never into a slot a queued job could take; idle sandboxes count against the hub's limit.
        if (waiting >= s.minIdle || waiting >= s.max || queued || running + this.size >= this.deps.config.maxJobs) break;
        this.startOne(name);
      }
    }
  }

  /** A container of an idle sandbox; known by its label too, since its id is not known while it is created. */
  owns(c: ContainerRef): boolean {
    return [...this.idle.values()].some((m) => m.sandbox.ref?.id === c.id || c.jobId === `pool:${m.id}`);
  }

  /** Gives up an idle sandbox so a queued job gets its slot; true when one went. */
  evictOne(): boolean {
    const m = this.idle.values().next().value;
    if (!m) return false;
    this.remove(m, 'a queued job needs its slot');
    return true;
  }

  private settings(name: string): PoolSettings | undefined {
    try {
      return poolSettings(this.deps.profiles.get(name), this.deps.config);
    } catch {
      return undefined;
    }
  }

  private startOne(profileName: string): void {
    const id = randomUUID();
    const label = `pooled sandbox ${id}`;
    const holder: SandboxHolder = {
      label,
      connected: () => {
        const m = this.idle.get(id);
        if (m) m.idleSince ??= Date.now();
        // No task: it waits for one, like a named agent's runtime.
        return undefined;
      },
      report: () => {},
      health: () => {},
      remember: () => {},
      lost: (reason) => lose(reason),
      // An idle container that writes is none the hub started: it goes like a lost one.
      diskFull: (message) => lose(message),
    };
    const lose = (reason: string) => {
      const m = this.idle.get(id);
      if (!m || this.stopped) return;
      this.remove(m, reason);
      this.deps.log(`warm pool of ${profileName}: ${reason}`);
      this.refill();
    };
    const m: Idle = { id, profile: profileName, sandbox: new Sandbox(this.deps, holder) };
    this.idle.set(id, m);
    void (async () => {
      const profile = this.deps.profiles.get(profileName);
      const image = await this.deps.backend.prepare(profile);
      if (!this.idle.has(id)) return;
      await m.sandbox.start({ jobId: `pool:${id}`, hubId: this.deps.hubId, profile, pool: profileName }, image);
    })().catch((err: Error) => {
      this.remove(m, 'its start failed');
      this.deps.log(`warm pool of ${profileName}: starting a sandbox failed: ${err.message}`);
    });
  }

  private remove(m: Idle, why: string): void {
    this.idle.delete(m.id);
    void m.sandbox.end(why).catch((err: Error) => this.deps.log(`warm pool: removing ${m.id} failed: ${err.message}`));
  }

  /** Idle sandboxes past their time to live make way for fresh ones. */
  private expire(): void {
    if (this.stopped) return;
    const now = Date.now();
    for (const m of [...this.idle.values()]) {
      const s = this.settings(m.profile);
      if (m.idleSince !== undefined && (!s || now - m.idleSince > s.ttlMs)) this.remove(m, 'past its time to live');
    }
    this.refill();
  }

  /** Removes the idle sandboxes (at shutdown the store closes; the next start begins afresh). */
  async close(): Promise<void> {
    this.stopped = true;
    clearInterval(this.sweep);
    const idle = [...this.idle.values()];
    this.idle.clear();
    await Promise.all(idle.map((m) => m.sandbox.end('the hub is stopping').catch(() => {})));
  }
}

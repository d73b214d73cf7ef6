// The warm pool: per profile, containers started ahead with their runtimes
// connected, each never used, waiting for one job. A job takes one (so every job
// still gets a fresh container), gets its env, workspace, steps and time limit when
// it is assigned, and the container goes when the job ends, like any job's. The
// pool refills in the background, but only into slots no queued job is waiting for.
import { randomUUID } from 'node:crypto';
import type { Profile } from '../../schemas/types.gen.js';
import type { Backend, ContainerRef } from '../backend/types.js';
import { runtimeEnv } from '../sandboxes/runtime-env.js';
import type { HubConfig } from '../platform/config.js';
import type { ProfileRegistry } from '../profiles/registry.js';
import { hashToken, newSecret } from '../store/tokens.js';
import type { ConnectedContainer, RuntimeLink, RuntimeSession } from '../sandboxes/runtime-link.js';
import type { OutputFrame } from '../../schemas/agent-frame.js';
import type { DoneMessage, StepMessage } from '../../schemas/types.gen.js';

export interface PoolSettings {
  minIdle: number;
  max: number;
  ttlMs: number;
}

interface Pooled {
  id: string;
  profile: string;
  /** Its one-time token's hash, until its runtime first attaches with it. */
  tokenHash?: string;
  /** The session secret's hash its runtime was given: what a reconnect proves itself with. */
  sessionHash?: string;
  ref?: ContainerRef;
  link?: RuntimeLink;
  image: string;
  seq: number;
  startedAt: number;
  /** When its runtime dialled in: its time to live counts from there, so a slow start on a busy engine does not use it up. */
  idleSince?: number;
  /** The job it was given; from then on it is that job's container. */
  job?: string;
}

export interface PoolDeps {
  config: HubConfig;
  hubId: string;
  backend: Backend;
  profiles: ProfileRegistry;
  log: (msg: string) => void;
  /** Slots the hub's own jobs take now, and whether any job waits for one. */
  load(): { running: number; queued: boolean };
  /** A pooled container's runtime reported for the job it was given. */
  report(jobId: string, msg: StepMessage | DoneMessage | OutputFrame): void;
  /** A pooled container was given to `jobId`: the job keeps its runtime's session, so a reconnect (to this hub or a restarted one) finds the job as a one-shot job's does. */
  handOver(jobId: string, sessionHash: string): void;
  /** A pooled container died under its job. */
  lost(jobId: string, reason: string): void;
}

/** How often idle containers past their time to live are replaced. */
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
  private readonly members = new Map<string, Pooled>();
  private readonly sweep: NodeJS.Timeout;
  private stopped = false;

  constructor(private readonly deps: PoolDeps) {
    this.sweep = setInterval(() => void this.expire(), SWEEP_MS);
    this.sweep.unref();
  }

  /** Containers of the pool that are not given to a job. */
  get size(): number {
    return [...this.members.values()].filter((m) => !m.job).length;
  }

  /** What /health shows: idle (connected), starting and the most kept, by profile. */
  state(): Record<string, { idle: number; starting: number; minIdle: number; max: number }> {
    const out: Record<string, { idle: number; starting: number; minIdle: number; max: number }> = {};
    for (const name of this.deps.profiles.names()) {
      const s = this.settings(name);
      if (!s) continue;
      const waiting = [...this.members.values()].filter((m) => m.profile === name && !m.job);
      out[name] = { idle: waiting.filter((m) => m.link).length, starting: waiting.filter((m) => !m.link).length, minIdle: s.minIdle, max: s.max };
    }
    return out;
  }

  /** A connected, never-used container for a job of `profile`, handed over to `jobId`. */
  take(profile: string, jobId: string): ConnectedContainer | undefined {
    const m = [...this.members.values()].find((x) => x.profile === profile && !x.job && x.link && x.ref);
    if (!m) return undefined;
    m.job = jobId;
    this.deps.handOver(jobId, m.sessionHash!);
    setImmediate(() => this.refill());
    return { link: m.link!, ref: m.ref!, seq: m.seq, image: m.image, env: {} };
  }

  /** The job given a container ended: the container is the job's to remove; the pool forgets it. */
  release(jobId: string): void {
    for (const [id, m] of this.members) if (m.job === jobId) this.members.delete(id);
    this.refill();
  }

  /**
   * A runtime of a pooled container dialled in: with its one-time token (spent
   * here), or with the session secret it was given, after its connection dropped.
   */
  attach(token: string, link: RuntimeLink): RuntimeSession | undefined {
    const hash = hashToken(token);
    const m = [...this.members.values()].find((x) => x.tokenHash === hash || x.sessionHash === hash);
    if (!m || this.stopped) return undefined;
    m.link?.close(4000, 'replaced by a newer connection');
    m.link = link;
    m.idleSince ??= Date.now();
    const session = newSecret('ses');
    m.tokenHash = undefined;
    m.sessionHash = hashToken(session);
    link.send({ t: 'welcome', session, acked: m.seq });
    return {
      label: `pooled container ${m.id}`,
      report: (msg) => {
        m.seq = Math.max(m.seq, msg.n);
        if (m.job) this.deps.report(m.job, msg);
      },
      health: () => {},
      detach: () => {
        if (m.link === link) m.link = undefined;
      },
    };
  }

  /** Starts containers where a profile has fewer waiting than it wants, in slots no job needs. */
  refill(): void {
    if (this.stopped) return;
    const { config } = this.deps;
    for (const name of this.deps.profiles.names()) {
      const s = this.settings(name);
      if (!s) continue;
      for (;;) {
        const waiting = [...this.members.values()].filter((m) => m.profile === name && !m.job).length;
        const { running, queued } = this.deps.load();
        // Never into a slot a queued job could take; pooled containers count against the hub's limit.
        if (waiting >= s.minIdle || waiting >= s.max || queued || running + this.size >= config.maxJobs) break;
        this.startOne(name);
      }
    }
  }

  /**
   * A container of this pool's, waiting or given to a job (the reaper leaves those
   * alone); known by its label too, since its id is not known while it is created.
   */
  owns(c: ContainerRef): boolean {
    return [...this.members.values()].some((m) => m.ref?.id === c.id || c.jobId === `pool:${m.id}`);
  }

  /** Gives up an idle container so a queued job gets its slot; true when one went. */
  evictOne(): boolean {
    const m = [...this.members.values()].find((x) => !x.job);
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
    const { backend, config, hubId, profiles } = this.deps;
    const token = newSecret('agt');
    const m: Pooled = { id: randomUUID(), profile: profileName, tokenHash: hashToken(token), image: '', seq: 0, startedAt: Date.now() };
    this.members.set(m.id, m);
    void (async () => {
      try {
        const profile = profiles.get(profileName);
        m.image = await backend.prepare(profile);
        m.ref = await backend.start({
          jobId: `pool:${m.id}`,
          hubId,
          image: m.image,
          profile,
          pool: profileName,
          env: runtimeEnv(config, token),
        });
        if (this.stopped || !this.members.has(m.id)) return void (await backend.destroy(m.ref));
        const ended = (why: string) => {
          if (!this.members.has(m.id) || this.stopped) return;
          this.members.delete(m.id);
          if (m.job) this.deps.lost(m.job, `${why} before the job ended`);
          else this.refill();
        };
        backend.wait(m.ref).then(
          ({ exitCode }) => ended(`its container stopped (exit code ${exitCode})`),
          (err: Error) => ended(`the engine lost track of its container (${err.message})`),
        );
      } catch (err) {
        this.members.delete(m.id);
        this.deps.log(`warm pool of ${profileName}: starting a container failed: ${(err as Error).message}`);
      }
    })();
  }

  private remove(m: Pooled, why: string): void {
    this.members.delete(m.id);
    m.link?.close(1000, why);
    if (m.ref) void this.deps.backend.destroy(m.ref).catch(() => {});
  }

  /** Idle containers past their time to live make way for fresh ones. */
  private async expire(): Promise<void> {
    if (this.stopped) return;
    const now = Date.now();
    for (const m of [...this.members.values()]) {
      const s = this.settings(m.profile);
      if (m.job) continue;
      if (m.idleSince !== undefined && (!s || now - m.idleSince > s.ttlMs)) this.remove(m, 'past its time to live');
      // As long as a job's runtime gets to dial in: one that never does would hold its slot for good.
      else if (m.idleSince === undefined && m.ref && now - m.startedAt > this.deps.config.agentConnectTimeoutMs) this.remove(m, 'its runtime never dialled in');
    }
    this.refill();
  }

  /** Removes the containers waiting (at shutdown the store closes; the next start begins afresh). */
  async close(): Promise<void> {
    this.stopped = true;
    clearInterval(this.sweep);
    const waiting = [...this.members.values()].filter((m) => !m.job);
    for (const m of waiting) this.members.delete(m.id);
    await Promise.all(waiting.map((m) => (m.ref ? this.deps.backend.destroy(m.ref).catch(() => {}) : undefined)));
  }
}

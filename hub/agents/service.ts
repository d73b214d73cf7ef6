// Named agents: long-lived, hardened containers with the runtime connected, each
// with a volume of its own at /workspace. The jobs sent to an agent run in its
// container one at a time, in the order they came (the job service drives each
// one's lifecycle); this module owns the agent's own life: start, stop, destroy,
// its runtime's connection, what it is doing, idleness, and the restart of the hub.
import { randomUUID } from 'node:crypto';
import type { AgentRequest, AgentView, HubMessage, StepMessage, DoneMessage } from '../../schemas/types.gen.js';
import type { OutputFrame } from '../../schemas/agent-frame.js';
import { SNAPSHOT_REPO, type Backend, type ContainerRef } from '../backend/types.js';
import { runtimeEnv } from '../sandboxes/runtime-env.js';
import type { HubConfig } from '../platform/config.js';
import { HubError } from '../platform/errors.js';
import type { EventBus } from '../events/event-bus.js';
import type { ConnectedContainer, RuntimeLink, RuntimeSession } from '../sandboxes/runtime-link.js';
import { canSee, isAdmin, requireScope, type Principal } from '../platform/principal.js';
import type { ProfileRegistry } from '../profiles/registry.js';
import type { Agent, AgentPatch, AgentStore } from '../store/agents.js';
import { agentLogKey, type NewEvent } from '../store/events.js';
import type { Job, JobStore } from '../store/jobs.js';
import type { Snapshots } from '../snapshots/snapshots.js';
import type { Snapshot } from '../store/snapshots.js';
import { hashToken, newSecret } from '../store/tokens.js';
import { HealthHistory } from './health-history.js';

/** How often idle agents are looked for. */
const IDLE_SWEEP_MS = 1000;

/**
 * What the agents need of the jobs that run on them, given by the composition root
 * (the job service): named agents hold a sandbox and lend it to one job at a time,
 * and never import the jobs layer above them.
 */
export interface AgentJobs {
  runOnAgent(job: Job, target: ConnectedContainer): void;
  agentReport(jobId: string, msg: StepMessage | DoneMessage | OutputFrame): unknown;
  endOnAgent(jobId: string, reason: string): Promise<void>;
  cancel(id: string, principal: undefined, reason: string): Promise<unknown>;
}

export interface AgentServiceDeps {
  config: HubConfig;
  hubId: string;
  agents: AgentStore;
  store: JobStore;
  bus: EventBus;
  backend: Backend;
  profiles: ProfileRegistry;
  jobs: AgentJobs;
  snapshots: Snapshots;
  log: (msg: string) => void;
}

/** How long taking a snapshot may keep an agent paused and the caller waiting. */
const SNAPSHOT_TIMEOUT_MS = 5 * 60_000;

/** What the hub holds for an agent whose container runs. */
interface Live {
  ref: ContainerRef;
  link?: RuntimeLink;
  /** The last message counter of its runtime seen. */
  seq: number;
  /** Open shells: an agent with one is not idle. */
  shells: number;
  connectTimer?: NodeJS.Timeout;
  stopping: boolean;
}

export function agentView(a: Agent): AgentView {
  return {
    name: a.name,
    state: a.state,
    profile: a.profile,
    owner: a.owner,
    image: a.image ?? null,
    createdAt: a.createdAt,
    lastActivityAt: a.lastActivityAt,
    idleTimeout: a.idleTimeout ?? null,
    health: a.health ?? null,
    volume: a.volume,
    reason: a.reason ?? null,
    currentJob: a.currentJob ?? null,
  };
}

export class AgentService {
  private readonly live = new Map<string, Live>();
  /** The last of each agent's start, stop, snapshot and destroy: the next waits for it, so two never interleave. */
  private readonly turns = new Map<string, { tail: Promise<unknown>; waiting: number }>();
  /** CPU and memory over the last minutes, by agent id. */
  readonly history = new HealthHistory();
  private readonly idleSweep: NodeJS.Timeout;
  private stopped = false;

  constructor(private readonly deps: AgentServiceDeps) {
    this.idleSweep = setInterval(() => this.detached('the idle sweep', this.stopIdle()), IDLE_SWEEP_MS);
    this.idleSweep.unref();
  }

  // ── clients ────────────────────────────────────────────────────────────────

  create(req: AgentRequest, principal: Principal): Agent {
    const { config, profiles, agents } = this.deps;
    requireScope(principal, 'jobs', 'creating an agent');
    // The CLI tells a job's id from an agent's name by its form.
    if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(req.name)) {
      throw new HubError('VALIDATION_FAILED', `agent name ${req.name} looks like a job id; pick another`, { issues: [{ path: '/name', message: 'must not look like a job id' }] });
    }
    const owned = agents.list(principal.id).length;
    if (owned >= config.maxAgentsPerPrincipal) {
      throw new HubError('LIMIT_REACHED', `${principal.label} has ${owned} agents, the most this hub allows per principal (DOCKER_AGENT_MAX_AGENTS_PER_PRINCIPAL=${config.maxAgentsPerPrincipal}); destroy one first`, {
        limit: 'DOCKER_AGENT_MAX_AGENTS_PER_PRINCIPAL',
        max: config.maxAgentsPerPrincipal,
      });
    }
    const profile = profiles.get(req.profile ?? config.defaultProfile);
    if (profile.privileged) throw new HubError('PROFILE_NOT_ALLOWED', `profile ${profile.name} is privileged; named agents run unprivileged profiles only`);
    const id = randomUUID();
    const created = agents.create({
      id,
      name: req.name,
      owner: principal.id,
      profile: profile.name,
      env: req.env ?? {},
      ...(req.idleTimeout ? { idleTimeout: req.idleTimeout } : {}),
      volume: `docker-agent-${id}`,
      ...(req.from ? { fromImage: this.deps.snapshots.imageOf(req.from.snapshot, principal) } : {}),
    });
    if (!created) throw new HubError('AGENT_EXISTS', `an agent named ${req.name} exists already on this hub; pick another name`);
    this.bootLater(id);
    return agents.get(id)!;
  }

  /** An agent by name; someone else's is a 404 like a missing one. */
  get(name: string, principal?: Principal): Agent {
    const agent = this.deps.agents.byName(name);
    if (!agent || (principal && !canSee(principal, agent.owner))) {
      throw new HubError('AGENT_NOT_FOUND', `no agent named ${name}`, undefined, agent ? { foreign: true } : undefined);
    }
    return agent;
  }

  list(principal: Principal): Agent[] {
    return this.deps.agents.list(isAdmin(principal) ? undefined : principal.id);
  }

  async start(name: string, principal: Principal): Promise<Agent> {
    const agent = this.get(name, principal);
    if (agent.state === 'running' || agent.state === 'starting') return agent;
    this.bootLater(agent.id);
    return this.deps.agents.get(agent.id) ?? agent;
  }

  /** Stops the container (what it ran ends; /workspace stays); the agent's queued jobs wait for its next start. */
  async stop(name: string, principal: Principal, reason = 'stopped by request'): Promise<Agent> {
    const agent = this.get(name, principal);
    await this.inTurn(agent.id, () => this.halt(agent.id, 'stopped', reason));
    return this.deps.agents.get(agent.id) ?? agent;
  }

  /** Removes the container and, unless kept, the volume; its unfinished jobs are cancelled. */
  async destroy(name: string, principal: Principal, opts: { keepVolume: boolean }): Promise<void> {
    const agent = this.get(name, principal);
    await this.inTurn(agent.id, async () => {
      // Destroyed by a call that came first: nothing left to do.
      if (!this.deps.agents.get(agent.id)) return;
      await this.halt(agent.id, 'stopped', 'destroyed');
      for (const job of this.deps.store.unfinishedOnAgent(agent.id)) {
        await this.deps.jobs.cancel(job.id, undefined, `agent ${agent.name} was destroyed`).catch(() => {});
      }
      if (!opts.keepVolume) await this.deps.backend.removeVolume(agent.volume);
      this.deps.agents.remove(agent.id);
      this.history.forget(agent.id);
    });
  }

  /** Commits the agent, paused while it is read, with its /workspace: a snapshot new agents and jobs can start from. */
  async snapshot(name: string, principal: Principal): Promise<Snapshot> {
    const agent = this.get(name, principal);
    return this.inTurn(agent.id, () => this.takeSnapshot(name, principal));
  }

  private async takeSnapshot(name: string, principal: Principal): Promise<Snapshot> {
    const agent = this.get(name, principal);
    const live = this.live.get(agent.id);
    if (agent.state !== 'running' || !live) throw new HubError('NOT_RUNNING', `agent ${name} is ${agent.state}; start it first`);
    this.deps.snapshots.checkRoom(principal, this.deps.config.maxSnapshotsPerPrincipal);
    const id = randomUUID();
    const image = `${SNAPSHOT_REPO}:${id}`;
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new HubError('SNAPSHOT_FAILED', `the snapshot of agent ${name} took longer than ${SNAPSHOT_TIMEOUT_MS / 1000} s`)), SNAPSHOT_TIMEOUT_MS);
    });
    try {
      const taken = await Promise.race([this.deps.backend.snapshotAgent(live.ref, this.deps.profiles.get(agent.profile), image), limit]);
      this.touch(agent.id);
      return this.deps.snapshots.record({ id, owner: agent.owner, source: `agent ${name}`, image: taken.image, bytes: taken.bytes });
    } finally {
      clearTimeout(timer);
    }
  }

  /** The container to open a shell in; the agent counts as busy while it is open. */
  shellTarget(name: string, principal: Principal): { ref: ContainerRef; done: () => void } {
    const agent = this.get(name, principal);
    const live = this.live.get(agent.id);
    if (agent.state !== 'running' || !live) throw new HubError('NOT_RUNNING', `agent ${name} is ${agent.state}; start it first`);
    live.shells++;
    this.touch(agent.id);
    return {
      ref: live.ref,
      done: () => {
        live.shells--;
        this.touch(agent.id);
      },
    };
  }

  /** The agent a job names, as the job service needs it: its id and profile. */
  forJob(name: string, principal: Principal): Agent {
    return this.get(name, principal);
  }

  // ── the runtime's connection (called by the job service's agent channel) ──

  /** A runtime proved itself with its agent's one-time token or its session token; undefined when the token is not an agent's. */
  attach(token: string, link: RuntimeLink): RuntimeSession | undefined {
    const { agents } = this.deps;
    const agent = agents.byToken(hashToken(token));
    if (!agent) return undefined;
    const live = this.live.get(agent.id);
    if (!live || live.stopping || this.stopped) throw new HubError('NOT_RUNNING', `agent ${agent.name} is not running here`);
    live.link?.close(4000, 'replaced by a newer connection');
    live.link = link;
    clearTimeout(live.connectTimer);
    const session = newSecret('ses');
    const current = agent.currentJob ? this.deps.store.get(agent.currentJob) : undefined;
    live.seq = Math.max(live.seq, agent.agentSeq, current?.agentSeq ?? 0);
    this.update(agent.id, { tokenHash: null, sessionHash: hashToken(session), ...(agent.state === 'starting' ? { state: 'running', reason: null } : {}) });
    if (agent.state === 'starting') this.event(agent.id, { type: 'agent', state: 'running' });
    link.send({ t: 'welcome', session, acked: live.seq } satisfies HubMessage);
    setImmediate(() => this.dispatch(agent.id));
    return {
      label: `agent ${agent.name}`,
      report: (msg) => this.report(agent.id, msg),
      health: (h) => {
        this.history.add(agent.id, h);
        this.update(agent.id, { health: { ...h, at: new Date().toISOString() } });
      },
      detach: () => {
        if (live.link === link) live.link = undefined;
      },
    };
  }

  private report(agentId: string, msg: StepMessage | DoneMessage | OutputFrame): void {
    const live = this.live.get(agentId);
    if (!live) return;
    live.seq = Math.max(live.seq, msg.n);
    const jobId = this.deps.agents.get(agentId)?.currentJob;
    // Reports of a job that has ended meanwhile (cancelled, timed out on the hub's side) are acknowledged and dropped.
    if (!jobId) return;
    if ('stream' in msg) this.event(agentId, { type: msg.stream, step: msg.step, data: msg.data });
    this.deps.jobs.agentReport(jobId, msg);
  }

  /** The job service ended a job that ran here: the agent takes the next. */
  jobEnded(agentId: string, jobId: string, state: string): void {
    const agent = this.deps.agents.get(agentId);
    if (!agent || agent.currentJob !== jobId) return;
    this.update(agentId, { currentJob: null, agentSeq: this.live.get(agentId)?.seq ?? agent.agentSeq });
    this.event(agentId, { type: 'agent', state: agent.state, job: jobId, reason: `job ${state}` });
    this.touch(agentId);
    this.dispatch(agentId);
  }

  /** Hands the agent its next queued job when it is connected and free. */
  dispatch(agentId: string): void {
    if (this.stopped) return;
    const agent = this.deps.agents.get(agentId);
    const live = this.live.get(agentId);
    if (!agent || agent.state !== 'running' || !live?.link || live.stopping || agent.currentJob) return;
    const job = this.deps.store.nextOnAgent(agentId);
    if (!job) return;
    this.update(agentId, { currentJob: job.id });
    this.event(agentId, { type: 'agent', state: 'running', job: job.id });
    this.touch(agentId);
    this.deps.jobs.runOnAgent(job, { link: live.link, ref: live.ref, seq: live.seq, image: agent.image ?? '', env: agent.env });
  }

  // ── the container ──────────────────────────────────────────────────────────

  /** Boots the agent in its turn, in the background: whatever goes wrong ends in its state, never in the caller's. */
  private bootLater(id: string): void {
    this.detached(`booting agent ${id}`, this.inTurn(id, () => this.boot(id)));
  }

  private async boot(id: string): Promise<void> {
    const { backend, profiles, config, hubId } = this.deps;
    // Read now, in its turn: it may have been destroyed, or started, by the call before.
    const agent = this.deps.agents.get(id);
    if (!agent || agent.state === 'running' || this.stopped) return;
    this.update(agent.id, { state: 'starting', reason: null, currentJob: null, agentSeq: 0 });
    this.event(agent.id, { type: 'agent', state: 'starting' });
    try {
      const profile = profiles.get(agent.profile);
      const image = agent.fromImage ?? (await backend.prepare(profile, (p) => this.event(agent.id, { type: 'progress', ...p })));
      const token = newSecret('agt');
      this.update(agent.id, { image, tokenHash: hashToken(token) });
      const ref = await backend.start({
        jobId: agentLogKey(agent.id),
        hubId,
        image,
        profile,
        agent: { id: agent.id, volume: agent.volume },
        env: runtimeEnv(config, token),
      });
      this.update(agent.id, { containerId: ref.id });
      this.adopt(agent.id, ref, 0);
    } catch (err) {
      this.update(agent.id, { state: 'error', reason: (err as Error).message });
      this.event(agent.id, { type: 'agent', state: 'error', reason: (err as Error).message });
    }
  }

  /** Watches a running container of the agent: its runtime must dial in, and its end is noticed. */
  private adopt(agentId: string, ref: ContainerRef, seq: number): void {
    const { backend, config } = this.deps;
    const live: Live = { ref, seq, shells: 0, stopping: false };
    this.live.set(agentId, live);
    live.connectTimer = setTimeout(() => {
      this.fail(agentId, live, `its runtime did not connect within ${config.agentConnectTimeoutMs / 1000} s`);
    }, config.agentConnectTimeoutMs);
    backend.wait(ref).then(
      ({ exitCode }) => this.fail(agentId, live, `its container stopped (exit code ${exitCode})`),
      (err: Error) => this.fail(agentId, live, `the engine lost track of its container: ${err.message}`),
    );
  }

  /** The agent's container `live` failed: it ends `error` with the reason and the container's last words, in its turn. */
  private fail(agentId: string, live: Live, reason: string): void {
    this.detached(`agent ${agentId}`, this.inTurn(agentId, async () => {
      // After close() the store may be closed: the next start settles what is left. A container stopped on purpose, or replaced, is no failure.
      if (this.stopped || live.stopping || this.live.get(agentId) !== live) return;
      const logs = (await this.deps.backend.logs(live.ref, 20).catch(() => '')).trim();
      await this.halt(agentId, 'error', logs ? `${reason}; its last words:\n${logs}` : reason);
    }));
  }

  /** Ends the container (the volume stays) and the job it was running; the agent is left `state`. A destroyed agent is a no-op. */
  private async halt(agentId: string, state: 'stopped' | 'error', reason: string): Promise<void> {
    const agent = this.deps.agents.get(agentId);
    if (!agent) return;
    const live = this.live.get(agent.id);
    if (live) {
      live.stopping = true;
      clearTimeout(live.connectTimer);
      this.live.delete(agent.id);
      live.link?.close(1000, `agent ${state}`);
      await this.deps.backend.destroy(live.ref).catch((err) => this.deps.log(`agent ${agent.name}: removing its container failed: ${err.message}`));
    }
    if (agent.currentJob) await this.deps.jobs.endOnAgent(agent.currentJob, `agent ${agent.name} ${state === 'error' ? 'failed' : 'was stopped'}: ${reason}`);
    this.update(agent.id, { state, reason, containerId: null, tokenHash: null, sessionHash: null, currentJob: null });
    this.event(agent.id, { type: 'agent', state, reason });
  }

  private async stopIdle(): Promise<void> {
    if (this.stopped) return;
    const now = Date.now();
    for (const agent of this.deps.agents.list()) {
      const live = this.live.get(agent.id);
      if (!agent.idleTimeout || agent.state !== 'running' || !live || live.shells > 0 || agent.currentJob) continue;
      if (this.deps.store.nextOnAgent(agent.id)) continue;
      if (now - Date.parse(agent.lastActivityAt) < agent.idleTimeout * 1000) continue;
      await this.inTurn(agent.id, async () => {
        // Looked at again in its turn: a job, a shell or a stop may have come first.
        const now = this.deps.agents.get(agent.id);
        if (now?.state !== 'running' || now.currentJob || (this.live.get(agent.id)?.shells ?? 0) > 0) return;
        await this.halt(agent.id, 'stopped', `idle for ${agent.idleTimeout} s (idleTimeout)`);
      });
    }
  }

  // ── restart ────────────────────────────────────────────────────────────────

  /** After a restart: agents whose containers still run wait for their runtimes to dial back in; stopped ones stay stopped. */
  async recover(): Promise<void> {
    const containers = await this.deps.backend.list(this.deps.hubId);
    for (const agent of this.deps.agents.list()) {
      if (agent.state === 'stopped' || agent.state === 'error') continue;
      const c = containers.find((x) => x.agentId === agent.id);
      if (c?.running && agent.state === 'running') {
        this.adopt(agent.id, { id: c.id, jobId: c.jobId }, agent.agentSeq);
        this.deps.log(`agent ${agent.name}: re-attached to its running container`);
      } else {
        if (c) await this.deps.backend.destroy(c).catch(() => {});
        // It was starting, or its container is gone: start it afresh, as it was meant to run.
        this.bootLater(agent.id);
      }
    }
  }

  /** Containers of agents this hub knows (the job service's reaper leaves them alone). */
  owns(agentId: string): boolean {
    return this.deps.agents.get(agentId) !== undefined;
  }

  /** Stops timers (for a clean shutdown); running containers are re-attached by the next start. */
  close(): void {
    this.stopped = true;
    clearInterval(this.idleSweep);
    for (const live of this.live.values()) {
      live.stopping = true;
      clearTimeout(live.connectTimer);
    }
  }

  /** Runs `work` once the agent's earlier start, stop, snapshot or destroy has ended (at once when none is under way). */
  private inTurn<T>(id: string, work: () => Promise<T>): Promise<T> {
    const turn = this.turns.get(id) ?? { tail: Promise.resolve(), waiting: 0 };
    turn.waiting++;
    this.turns.set(id, turn);
    const run = async () => {
      try {
        return await work();
      } finally {
        // Gone before its caller resumes, so the next call finds the agent free and runs at once.
        if (--turn.waiting === 0 && this.turns.get(id) === turn) this.turns.delete(id);
      }
    };
    // Called at once when free, so a start's `starting` is stored before its caller is answered.
    const result = turn.waiting === 1 ? run() : turn.tail.then(run);
    turn.tail = result.catch(() => {});
    return result;
  }

  /** Work nobody waits for: a failure is logged, never left to end the process. */
  private detached(what: string, work: Promise<unknown>): void {
    work.catch((err: Error) => this.deps.log(`${what}: ${err?.stack ?? err}`));
  }

  private update(id: string, patch: AgentPatch): void {
    if (!this.stopped) this.deps.agents.update(id, patch);
  }

  private touch(id: string): void {
    this.update(id, { lastActivityAt: new Date().toISOString() });
  }

  private event(agentId: string, e: NewEvent): void {
    if (!this.stopped) this.deps.bus.publish(agentLogKey(agentId), [e]);
  }
}

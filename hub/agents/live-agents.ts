// The containers of named agents: each agent's sandbox from boot (or adoption after a
// restart) to its halt, what its runtime reports, the job it is lending its sandbox
// to, idleness, and the hub's restart. The client API (service.ts) asks this of it.
import type { Backend, ContainerInfo, ContainerRef } from '../backend/types.js';
import type { HubConfig } from '../platform/config.js';
import type { EventBus } from '../events/event-bus.js';
import { Sandbox, type SandboxDeps, type SandboxHolder } from '../sandboxes/sandbox.js';
import type { RuntimeReport } from '../sandboxes/runtime-link.js';
import type { ProfileRegistry } from '../profiles/registry.js';
import type { Agent, AgentPatch, AgentStore } from '../store/agents.js';
import { agentLogKey, type NewEvent } from '../store/events.js';
import type { Job, JobStore } from '../store/jobs.js';
import type { JobRequest } from '../../schemas/types.gen.js';
import type { Principal } from '../platform/principal.js';
import { HealthHistory } from './health-history.js';
import { idleAgents } from './idle.js';
import { Turns } from './turns.js';

/** How often idle agents are looked for. */
const IDLE_SWEEP_MS = 1000;
const RETURN_EVERY_SWEEPS = 3;

/** What the agents need of the jobs that run on them (the job service): agents lend their sandbox to one job at a time, and never import the jobs layer. */
export interface AgentJobs {
  submit(req: JobRequest, principal: Principal, agent: { id: string; profile: string; env: Record<string, string> }): Job;
  runOnAgent(job: Job, sandbox: Sandbox, agentId: string, ended: (state: string) => void): void;
  agentReport(jobId: string, msg: RuntimeReport): void;
  /** Ends the job the agent runs: `cancelled`, or `error` with the event `failure` when the agent's sandbox broke a limit. */
  endOnAgent(jobId: string, reason: string, failure?: { code: 'DISK_LIMIT' | 'NODE_LOST'; message: string }): Promise<void>;
  cancel(id: string, principal: undefined, reason: string): Promise<unknown>;
}

export interface LiveAgentsDeps {
  config: HubConfig;
  hubId: string;
  agents: AgentStore;
  store: JobStore;
  bus: EventBus;
  backend: Backend;
  profiles: ProfileRegistry;
  jobs: AgentJobs;
  sandboxes: SandboxDeps;
  log: (msg: string) => void;
}

/** What the hub holds for an agent whose container runs. */
export interface Live {
  sandbox: Sandbox;
  /** Open shells: an agent with one is not idle. */
  shells: number;
  stopping: boolean;
}

export class LiveAgents {
  readonly turns = new Turns();
  /** CPU and memory over the last minutes, by agent id. */
  readonly history = new HealthHistory();
  private readonly live = new Map<string, Live>();
  /** Output bytes in each agent's log, counted from the store on its first output since the hub started. */
  private readonly logBytes = new Map<string, number>();
  private readonly idleSweep: NodeJS.Timeout;
  private stopped = false;

  constructor(private readonly deps: LiveAgentsDeps) {
    let sweeps = 0;
    this.idleSweep = setInterval(() => {
      this.detached('the idle sweep', this.stopIdle());
      // Asks the backend of its nodes, so less often.
      if (++sweeps % RETURN_EVERY_SWEEPS === 0) this.detached('the lost agents', this.returnLost());
    }, IDLE_SWEEP_MS);
    this.idleSweep.unref();
  }

  /** The agent's sandbox while its container runs. */
  of(agentId: string): Live | undefined {
    return this.live.get(agentId);
  }

  // ── its sandbox ────────────────────────────────────────────────────────────

  /** What the agent's sandbox tells it: its runtime connected, reported, failed. */
  private holder(agentId: string, name: string): SandboxHolder {
    return {
      label: `agent ${name}`,
      connected: () => {
        const agent = this.deps.agents.get(agentId);
        if (agent?.state === 'starting') {
          this.update(agentId, { state: 'running', reason: null });
          this.event(agentId, { type: 'agent', state: 'running' });
          if (!agent.node) this.recordNode(agentId);
        }
        setImmediate(() => this.dispatch(agentId));
        // No task in the welcome: an agent's runtime takes its jobs one by one.
        return undefined;
      },
      report: (msg) => this.report(agentId, msg),
      health: (h) => {
        this.history.add(agentId, h);
        this.update(agentId, { health: { ...h, at: new Date().toISOString() } });
      },
      remember: (secrets) => this.update(agentId, secrets),
      lost: (reason, lastWords, code) =>
        code === 'NODE_LOST'
          ? this.haltInTurn(agentId, 'lost', reason, { code, message: reason })
          : this.haltInTurn(agentId, 'error', lastWords ? `${reason}; its last words:\n${lastWords}` : reason),
      diskFull: (message) => this.haltInTurn(agentId, 'stopped', message, { code: 'DISK_LIMIT', message }),
    };
  }

  private report(agentId: string, msg: RuntimeReport): void {
    if (!this.live.has(agentId)) return;
    const jobId = this.deps.agents.get(agentId)?.currentJob;
    // Reports of a job that has ended meanwhile (cancelled, timed out on the hub's side) are acknowledged and dropped.
    if (!jobId) return;
    if ('stream' in msg) this.event(agentId, { type: msg.stream, step: msg.step, data: msg.data });
    this.deps.jobs.agentReport(jobId, msg);
  }

  /** A job that ran here ended: the agent takes the next. */
  private jobEnded(agentId: string, jobId: string, state: string): void {
    const agent = this.deps.agents.get(agentId);
    if (!agent || agent.currentJob !== jobId) return;
    this.update(agentId, { currentJob: null, agentSeq: this.live.get(agentId)?.sandbox.seq ?? agent.agentSeq });
    this.event(agentId, { type: 'agent', state: agent.state, job: jobId, reason: `job ${state}` });
    this.touch(agentId);
    this.dispatch(agentId);
  }

  /** Hands the agent its next queued job when it is connected and free. */
  dispatch(agentId: string): void {
    if (this.stopped) return;
    const agent = this.deps.agents.get(agentId);
    const live = this.live.get(agentId);
    if (!agent || agent.state !== 'running' || !live?.sandbox.online || live.stopping || agent.currentJob) return;
    const job = this.deps.store.nextOnAgent(agentId);
    if (!job) return;
    this.update(agentId, { currentJob: job.id });
    this.event(agentId, { type: 'agent', state: 'running', job: job.id });
    this.touch(agentId);
    this.deps.jobs.runOnAgent(job, live.sandbox, agentId, (state) => this.jobEnded(agentId, job.id, state));
  }

  // ── the container ──────────────────────────────────────────────────────────

  /** Boots the agent in its turn, in the background: whatever goes wrong ends in its state, never in the caller's. */
  bootLater(id: string): void {
    this.detached(
      `booting agent ${id}`,
      this.turns.run(id, () => this.boot(id)),
    );
  }

  private async boot(id: string): Promise<void> {
    const { backend, profiles, hubId } = this.deps;
    // Read now, in its turn: it may have been destroyed, or started, by the call before.
    const agent = this.deps.agents.get(id);
    if (!agent || agent.state === 'running' || this.stopped) return;
    this.update(agent.id, { state: 'starting', reason: null, currentJob: null, agentSeq: 0 });
    this.event(agent.id, { type: 'agent', state: 'starting' });
    const live = this.track(agent);
    try {
      const profile = profiles.get(agent.profile);
      const image = agent.fromImage ?? (await backend.prepare(profile, (p) => this.event(agent.id, { type: 'progress', ...p })));
      this.update(agent.id, { image });
      const ref = await live.sandbox.start(
        { jobId: agentLogKey(agent.id), hubId, profile, agent: { id: agent.id, volume: agent.volume, ...(agent.node ? { node: agent.node } : {}) } },
        image,
      );
      if (ref) this.update(agent.id, { containerId: ref.id });
    } catch (err) {
      if (this.live.get(agent.id) === live) this.live.delete(agent.id);
      await live.sandbox.end('its start failed').catch(() => {});
      this.update(agent.id, { state: 'error', reason: (err as Error).message });
      this.event(agent.id, { type: 'agent', state: 'error', reason: (err as Error).message });
    }
  }

  /** A new sandbox for the agent, held from now on; `seq`: the last runtime message already stored. */
  private track(agent: Agent, seq?: number): Live {
    const live: Live = { sandbox: new Sandbox(this.deps.sandboxes, this.holder(agent.id, agent.name), { seq }), shells: 0, stopping: false };
    this.live.set(agent.id, live);
    return live;
  }

  /** Takes on the agent's container found running after a restart: its runtime dials back in with the secrets its row kept. */
  private adopt(agent: Agent, ref: ContainerRef): void {
    // Its last job ended with the hub that ran it (the job's recovery settled it): the agent is free, past that job's messages.
    const last = agent.currentJob ? this.deps.store.get(agent.currentJob) : undefined;
    const seq = Math.max(agent.agentSeq, last?.agentSeq ?? 0);
    if (last) this.update(agent.id, { currentJob: null, agentSeq: seq });
    this.track(agent, seq).sandbox.adopt(ref, agent.image ?? '', this.deps.agents.secrets(agent.id));
  }

  /** Where its volume is, once it first runs (asked of the backend, never of the runtime inside): it runs there from now on. */
  private recordNode(agentId: string): void {
    const ref = this.live.get(agentId)?.sandbox.ref;
    if (!ref) return;
    this.detached(
      `agent ${agentId}`,
      this.deps.backend.node(ref).then((node) => {
        if (node) this.update(agentId, { node });
      }),
    );
  }

  /** Lost agents whose node is back (ready and active) start again there. */
  private async returnLost(): Promise<void> {
    const lost = this.deps.agents.list().filter((a) => a.state === 'lost' && a.node);
    if (!lost.length) return;
    const back = new Set((await this.deps.backend.nodes()).filter((n) => n.state === 'ready' && n.availability === 'active').map((n) => n.hostname));
    for (const agent of lost) if (back.has(agent.node!)) this.bootLater(agent.id);
  }

  /**
   * Its sandbox ended without being asked to, in its turn: failed (`error`), wrote past the disk limit (`stopped`,
   * its job DISK_LIMIT) or lost its node (`lost`, its job NODE_LOST, until the node is back: returnLost).
   */
  private haltInTurn(agentId: string, state: 'stopped' | 'error' | 'lost', reason: string, failure?: { code: 'DISK_LIMIT' | 'NODE_LOST'; message: string }) {
    const live = this.live.get(agentId);
    this.detached(
      `agent ${agentId}`,
      this.turns.run(agentId, async () => {
        // After close() the store may be closed: the next start settles what is left. A container stopped on purpose, or replaced, is no failure.
        if (this.stopped || !live || live.stopping || this.live.get(agentId) !== live) return;
        await this.halt(agentId, state, reason, failure);
      }),
    );
  }

  /**
   * Ends the container (the volume stays) and the job it was running (cancelled, or
   * `error` with `failure`); the agent is left `state`. A destroyed agent is a no-op.
   */
  async halt(
    agentId: string,
    state: 'stopped' | 'error' | 'lost',
    reason: string,
    failure?: { code: 'DISK_LIMIT' | 'NODE_LOST'; message: string },
  ): Promise<void> {
    const agent = this.deps.agents.get(agentId);
    if (!agent) return;
    const live = this.live.get(agent.id);
    if (live) {
      live.stopping = true;
      this.live.delete(agent.id);
      await live.sandbox.end(`agent ${state}`).catch((err: Error) => this.deps.log(`agent ${agent.name}: removing its container failed: ${err.message}`));
    }
    if (agent.currentJob) {
      const what = { error: 'failed', stopped: 'was stopped', lost: 'lost its node' }[state];
      await this.deps.jobs.endOnAgent(agent.currentJob, `agent ${agent.name} ${what}: ${reason}`, failure);
    }
    this.update(agent.id, { state, reason, containerId: null, tokenHash: null, sessionHash: null, currentJob: null });
    this.event(agent.id, { type: 'agent', state, reason });
  }

  private async stopIdle(): Promise<void> {
    if (this.stopped) return;
    const idle = idleAgents(this.deps.agents.list(), Date.now(), {
      shells: (id) => this.live.get(id)?.shells,
      queued: (id) => this.deps.store.nextOnAgent(id) !== undefined,
    });
    for (const agent of idle) {
      await this.turns.run(agent.id, async () => {
        // Looked at again in its turn: a job, a shell or a stop may have come first.
        const now = this.deps.agents.get(agent.id);
        if (now?.state !== 'running' || now.currentJob || (this.live.get(agent.id)?.shells ?? 0) > 0) return;
        await this.halt(agent.id, 'stopped', `idle for ${agent.idleTimeout} s (idleTimeout)`);
      });
    }
  }

  // ── restart ────────────────────────────────────────────────────────────────

  /** After a restart: agents whose containers still run wait for their runtimes to dial back in; stopped ones stay stopped. */
  async recover(containers: ContainerInfo[]): Promise<void> {
    // Values a crash left behind: an agent whose row never was, or one removed before its file went.
    this.deps.agents.pruneEnv();
    for (const agent of this.deps.agents.list()) {
      // A lost one starts again when its node is back (returnLost).
      if (agent.state === 'stopped' || agent.state === 'error' || agent.state === 'lost') continue;
      const c = containers.find((x) => x.agentId === agent.id);
      if (c?.running && agent.state === 'running') {
        this.adopt(agent, { id: c.id, jobId: c.jobId });
        this.deps.log(`agent ${agent.name}: re-attached to its running container`);
      } else {
        if (c) {
          await this.deps.backend.destroy(c).catch(() => {});
          this.update(agent.id, { containerId: null });
        }
        // It was starting, or its container is gone: start it afresh, as it was meant to run.
        this.bootLater(agent.id);
      }
    }
  }

  /** Whether a container is an agent's: the one its record names, or one being created for it (the reaper leaves those). */
  holds(c: ContainerInfo): boolean {
    if ([...this.live.values()].some((l) => l.sandbox.ref?.id === c.id)) return true;
    const agent = c.agentId ? this.deps.agents.get(c.agentId) : undefined;
    // Its id is stored once the engine answers; until then the label is all there is. A job's container from its snapshot carries the label too, but another id.
    return agent !== undefined && (agent.containerId === c.id || (!agent.containerId && c.jobId === agentLogKey(agent.id)));
  }

  /** Stops timers (for a clean shutdown); running containers are re-attached by the next start. */
  close(): void {
    this.stopped = true;
    clearInterval(this.idleSweep);
    for (const live of this.live.values()) {
      live.stopping = true;
      live.sandbox.stop();
    }
  }

  /** Work nobody waits for: a failure is logged, never left to end the process. */
  private detached(what: string, work: Promise<unknown>): void {
    work.catch((err: Error) => this.deps.log(`${what}: ${err?.stack ?? err}`));
  }

  private update(id: string, patch: AgentPatch): void {
    if (!this.stopped) this.deps.agents.update(id, patch);
  }

  touch(id: string): void {
    this.update(id, { lastActivityAt: new Date().toISOString() });
  }

  event(agentId: string, e: NewEvent): void {
    if (this.stopped) return;
    this.deps.bus.publish(agentLogKey(agentId), [e]);
    if (e.type === 'stdout' || e.type === 'stderr') this.rotate(agentId, e.data.length);
  }

  /** Keeps the agent's log within DOCKER_AGENT_MAX_AGENT_LOG_BYTES: past it, the older half of its output goes. */
  private rotate(agentId: string, added: number): void {
    const max = this.deps.config.maxAgentLogBytes;
    const bytes = (this.logBytes.get(agentId) ?? this.deps.agents.logBytes(agentId)) + (this.logBytes.has(agentId) ? added : 0);
    this.logBytes.set(agentId, bytes > max ? this.deps.agents.trimLog(agentId, Math.floor(max / 2)) : bytes);
  }

  /** The agent is gone: its count with it. */
  forget(agentId: string): void {
    this.logBytes.delete(agentId);
  }
}

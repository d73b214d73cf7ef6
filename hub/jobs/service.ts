// Runs jobs: takes them in, drives each through its lifecycle on the backend,
// applies what its agent reports, and puts things right after a restart.
import { randomUUID } from 'node:crypto';
import type { AgentTask, DoneMessage, HubMessage, JobRequest, JobState, StepMessage } from '../../schemas/types.gen.js';
import type { OutputFrame } from '../../schemas/agent-frame.js';
import type { HubConfig } from '../platform/config.js';
import { HubError } from '../platform/errors.js';
import type { ProfileRegistry } from '../profiles/registry.js';
import type { Backend, ContainerInfo, ContainerRef } from '../backend/types.js';
import type { NewEvent } from '../store/events.js';
import type { Job, JobPatch, JobSpec, JobStore, ListQuery, StepSummary } from '../store/jobs.js';
import { hashToken, newSecret } from '../store/tokens.js';
import type { WorkspaceStore } from '../workspaces/uploads.js';
import type { WorkspaceOwners } from '../store/workspace-owners.js';
import { canSee, describe, isAdmin, requireScope, type Principal } from '../platform/principal.js';
import { snapshotUrl, type Links } from '../platform/links.js';
import type { Snapshots } from '../snapshots/snapshots.js';
import type { EventBus } from '../events/event-bus.js';
import { canTransition, isTerminal } from './lifecycle.js';
import { jobSpec } from './job-spec.js';
import { ActiveJob } from './active-job.js';
import { runtimeEnv } from '../sandboxes/runtime-env.js';
import { WarmPool } from './pool.js';
import { recoveryPlan } from './recovery.js';
import type { ConnectedContainer, RuntimeLink, RuntimeSession } from '../sandboxes/runtime-link.js';

export type { ConnectedContainer, RuntimeLink, RuntimeSession };

/** How long the hub waits for a runtime, past what the runtime enforces itself. */
export interface Graces {
  /** Past a job's own time limit, for the runtime to report it. */
  deadlineMs: number;
  /** For a cancelled job's runtime to stop its steps and report. */
  cancelMs: number;
}

const GRACES: Graces = { deadlineMs: 10_000, cancelMs: 5_000 };

/** How long a job's end may wait for its snapshot. */
const SNAPSHOT_TIMEOUT_MS = 5 * 60_000;

/** What the job service needs of the named agents (agents/service.ts). */
export interface AgentHooks {
  attach(token: string, link: RuntimeLink): RuntimeSession | undefined;
  forJob(name: string, principal: Principal): { id: string; profile: string; env: Record<string, string> };
  jobEnded(agentId: string, jobId: string, state: string): void;
  dispatch(agentId: string): void;
  owns(agentId: string): boolean;
}

export interface JobServiceDeps {
  config: HubConfig;
  hubId: string;
  store: JobStore;
  bus: EventBus;
  backend: Backend;
  profiles: ProfileRegistry;
  workspaces: WorkspaceStore;
  workspaceOwners: WorkspaceOwners;
  snapshots: Snapshots;
  /** The hub's public URLs (for the snapshot's), known once it listens. */
  links: Links;
  log: (msg: string) => void;
  /** Shorter in the lifecycle's unit tests. */
  graces?: Graces;
  /** Told of every change of a job's state (for the metrics). */
  onState?: (job: Job, state: JobState) => void;
}

export class JobService {
  private readonly active = new Map<string, ActiveJob>();
  /** Containers of ended jobs still being removed, by container id. */
  private readonly removals = new Map<string, Promise<void>>();
  private stopped = false;
  private agents?: AgentHooks;

  private readonly graces: Graces;

  private readonly pool: WarmPool;

  constructor(private readonly deps: JobServiceDeps) {
    this.graces = deps.graces ?? GRACES;
    this.pool = new WarmPool({
      ...deps,
      load: () => ({
        running: [...this.active.values()].filter((a) => !a.agentId).length,
        queued: deps.store.nextQueued(1).length > 0,
      }),
      report: (jobId, msg) => void this.agentReport(jobId, msg),
      handOver: (jobId, sessionHash) => deps.store.update(jobId, { sessionHash }),
      lost: (jobId, reason) => void this.finish(jobId, 'error', { reason, events: [{ type: 'error', code: 'AGENT_LOST', message: reason }] }),
    });
  }

  useAgents(agents: AgentHooks): void {
    this.agents = agents;
  }

  // ── clients ────────────────────────────────────────────────────────────────

  submit(req: JobRequest, principal: Principal): Job {
    const { config, profiles, store, bus } = this.deps;
    // On a named agent the job runs in the agent's container, with the agent's profile.
    const agent = req.agent ? this.agents!.forJob(req.agent, principal) : undefined;
    const profile = profiles.get(agent?.profile ?? req.profile ?? config.defaultProfile);
    if (profile.privileged) {
      // Both are needed: the operator's switch for the whole hub, and the caller's grant.
      if (!config.allowPrivileged) {
        throw new HubError(
          'PROFILE_NOT_ALLOWED',
          `profile ${profile.name} is privileged and this hub does not allow privileged profiles (the operator sets DOCKER_AGENT_ALLOW_PRIVILEGED=true to allow them for principals with the "privileged" scope)`,
        );
      }
      requireScope(principal, 'privileged', `profile ${profile.name} is privileged: using it`);
    }
    const queued = store.countQueued(principal.id);
    if (queued >= config.maxQueuedPerPrincipal) {
      throw new HubError(
        'LIMIT_REACHED',
        `${describe(principal)} already has ${queued} queued jobs, the most this hub allows per principal (DOCKER_AGENT_MAX_QUEUED_PER_PRINCIPAL=${config.maxQueuedPerPrincipal}); wait for some to start`,
        { limit: 'DOCKER_AGENT_MAX_QUEUED_PER_PRINCIPAL', max: config.maxQueuedPerPrincipal },
      );
    }
    const spec = jobSpec(req, {
      ...(profile.timeout ? { profileTimeout: profile.timeout } : {}),
      ...(agent ? { agentEnv: agent.env } : {}),
      ...(req.from ? { fromImage: this.deps.snapshots.imageOf(req.from.snapshot, principal) } : {}),
    });
    // Checked now, so a client learns of a missing upload from its POST, not from a failed job.
    // Someone else's upload is answered exactly as a missing one.
    if (spec.workspace) {
      if (!isAdmin(principal) && !this.deps.workspaceOwners.owns(spec.workspace, principal.id)) {
        throw new HubError('WORKSPACE_NOT_FOUND', `no workspace ${spec.workspace} on this hub: upload it first with POST /v1/workspaces`, undefined, {
          foreign: this.deps.workspaceOwners.known(spec.workspace),
        });
      }
      this.deps.workspaces.path(spec.workspace);
    }
    const id = randomUUID();
    const summary: StepSummary[] = spec.steps.map((s) => ({ name: s.name, state: 'pending' }));
    store.create({ id, owner: principal.id, ...(agent ? { agent: agent.id } : {}), profile: profile.name, spec, steps: summary });
    bus.publish(id, [{ type: 'status', state: 'queued' }]);
    const job = store.get(id)!;
    if (agent) this.agents!.dispatch(agent.id);
    else this.pump();
    return job;
  }

  /** A job; with a principal, only one it may see (someone else's is a 404 like a missing one). */
  get(id: string, principal?: Principal): Job {
    const job = this.deps.store.get(id);
    if (!job || (principal && !canSee(principal, job.owner))) {
      throw new HubError('JOB_NOT_FOUND', `no job with id ${id}`, undefined, job ? { foreign: true, owner: job.owner } : undefined);
    }
    return job;
  }

  /** The job's snapshot as a `docker save` tar. */
  async snapshotArchive(id: string, principal: Principal, opts: { full?: boolean } = {}): Promise<NodeJS.ReadableStream> {
    const job = this.get(id, principal);
    if (!job.snapshot) {
      const why = job.spec.snapshot ? (isTerminal(job.state) ? 'committing it failed (see its events)' : 'the job has not ended yet') : 'it was not asked for one (snapshot: true)';
      throw new HubError('NOT_FOUND', `job ${id} has no snapshot: ${why}`);
    }
    return this.deps.backend.exportImage(job.snapshot.image, opts);
  }

  /** The principal's jobs; admin's: everyone's. */
  list(q: Omit<ListQuery, 'owner'>, principal: Principal): Job[] {
    return this.deps.store.list(isAdmin(principal) ? q : { ...q, owner: principal.id });
  }

  /** Cancels a job; without a principal, on the hub's own behalf (an agent stopped or destroyed). */
  async cancel(id: string, principal: Principal | undefined, reason = 'cancelled by request'): Promise<Job> {
    const job = this.get(id, principal);
    if (isTerminal(job.state)) throw new HubError('JOB_ENDED', `job ${id} already ended (${job.state}); nothing to cancel`);
    const a = this.active.get(id);
    if (job.state === 'snapshotting' && a?.stopSnapshot) {
      // The commit under way cannot be taken back; the job does not wait for it, and its image is not kept.
      a.stopSnapshot(reason);
      return this.get(id);
    }
    if (a?.agent && job.state === 'running') {
      // The runtime stops the steps and reports what they printed; the timer is the backstop.
      a.agent.send({ t: 'cancel', reason });
      a.setTimer('cancel', this.graces.cancelMs, () => void this.finish(id, 'cancelled', { reason }));
    } else {
      await this.finish(id, 'cancelled', { reason });
    }
    return this.get(id);
  }

  // ── agents ─────────────────────────────────────────────────────────────────

  /** A runtime proved itself with its one-time token or its session token: a one-shot job's or a named agent's. */
  attach(token: string, link: RuntimeLink): RuntimeSession {
    const { store } = this.deps;
    const job = store.byAgentToken(hashToken(token));
    if (!job) {
      const other = this.agents?.attach(token, link) ?? this.pool.attach(token, link);
      if (other) return other;
      throw new HubError('UNAUTHORIZED', 'unknown or spent agent token');
    }
    const a = this.active.get(job.id);
    if (!a || a.ending || this.stopped || isTerminal(job.state)) throw new HubError('JOB_ENDED', `job ${job.id} is not running here`);
    a.agent?.close(4000, 'replaced by a newer connection');
    a.agent = link;
    const session = newSecret('ses');
    const patch: JobPatch = { agentTokenHash: null, sessionHash: hashToken(session) };
    if (job.state === 'starting') {
      this.transition(job.id, 'running', { ...patch, startedAt: new Date().toISOString() });
      a.clearTimer('connect');
    } else store.update(job.id, patch);
    link.send({ t: 'welcome', session, acked: a.agentSeq, task: taskOf(job) });
    return {
      label: `job ${job.id}`,
      report: (msg) => void this.agentReport(job.id, msg),
      health: (h) => this.agentHealth(job.id, h),
      detach: () => {
        if (a.agent === link) a.agent = undefined;
      },
    };
  }

  /** Runs a queued job on a named agent that is free: its container, its connected runtime. */
  runOnAgent(job: Job, target: ConnectedContainer): void {
    if (this.stopped) return;
    const a = new ActiveJob(job.id, job.owner ?? '', target.seq, this.deps.store.outputUsage(job.id), job.agent!);
    this.active.set(job.id, a);
    void this.runOn(job, a, target);
  }

  /** Runs a job on a container whose runtime is connected already: a named agent's, or one from the warm pool. */
  private async runOn(job: Job, a: ActiveJob, target: ConnectedContainer): Promise<void> {
    a.ref = target.ref;
    a.agent = target.link;
    const deadlineAt = Date.now() + job.spec.timeout * 1000 + this.graces.deadlineMs;
    this.transition(job.id, 'preparing');
    this.transition(job.id, 'starting', { image: target.image, containerId: target.ref.id, deadlineAt });
    try {
      // What the job brings is applied now, not baked into the container it was given.
      if (job.spec.workspace) await this.deps.backend.putWorkspace(target.ref, this.deps.profiles.get(job.profile), this.deps.workspaces.path(job.spec.workspace));
    } catch (err) {
      return void (await this.finish(job.id, 'error', { reason: `unpacking the workspace failed: ${(err as Error).message}` }));
    }
    if (a.ending || !this.transition(job.id, 'running', { startedAt: new Date().toISOString() })) return;
    target.link.send({ t: 'task', task: taskOf(job) });
    a.setTimer('deadline', deadlineAt - Date.now(), () => {
      void this.finish(a.id, 'timed_out', { reason: `${this.timeoutReason(this.get(a.id), a)}; the agent did not report in time` });
    });
  }

  /** The warm pool's state, for /health. */
  poolState() {
    return this.pool.state();
  }

  /** The agent a job ran on was stopped or failed under it. */
  async endOnAgent(jobId: string, reason: string): Promise<void> {
    await this.finish(jobId, 'cancelled', { reason });
  }

  /** Applies one numbered message once; returns false when it was seen before. */
  agentReport(jobId: string, msg: StepMessage | DoneMessage | OutputFrame): boolean {
    const a = this.active.get(jobId);
    if (!a || msg.n <= a.agentSeq || this.stopped) return false;
    const { store, bus } = this.deps;
    const job = this.get(jobId);
    a.agentSeq = msg.n;
    if ('stream' in msg) {
      const events = this.capOutput(a, msg);
      if (events.length) bus.publish(jobId, events, () => store.setAgentSeq(jobId, msg.n));
      else store.setAgentSeq(jobId, msg.n);
    } else if (msg.t === 'step') {
      const steps = job.steps.map((s, i) => (i === msg.step ? stepSummary(s, msg) : s));
      if (msg.timedOut) a.timedOutStep = msg.step;
      const { t: _t, n: _n, ...rest } = msg;
      bus.publish(jobId, [{ type: 'step', ...rest, name: job.spec.steps[msg.step]?.name ?? `step ${msg.step + 1}` }], () =>
        store.update(jobId, { steps, agentSeq: msg.n }),
      );
    } else {
      store.setAgentSeq(jobId, msg.n);
      const reason = msg.outcome === 'timed_out' ? this.timeoutReason(job, a) : msg.outcome === 'cancelled' ? 'cancelled by request' : undefined;
      // After the channel has acknowledged `done`, so the runtime learns it was stored before the channel closes.
      setImmediate(() => void this.finish(jobId, msg.outcome, { exitCode: msg.exitCode, reason }));
    }
    return true;
  }

  /**
   * A frame's events under the job's output cap: bytes past DOCKER_AGENT_MAX_OUTPUT_BYTES
   * are dropped (still acknowledged, so the runtime does not hold them), one error
   * event says so, and the job goes on: its steps' exit codes decide how it ends.
   */
  private capOutput(a: ActiveJob, msg: OutputFrame): NewEvent[] {
    const max = this.deps.config.maxOutputBytes;
    const room = Math.max(0, max - a.output.bytes);
    const kept = msg.data.length > room ? msg.data.subarray(0, room) : msg.data;
    a.output.bytes += kept.length;
    const events: NewEvent[] = kept.length ? [{ type: msg.stream, step: msg.step, data: kept }] : [];
    if (kept.length < msg.data.length && !a.output.capped) {
      a.output.capped = true;
      events.push({
        type: 'error',
        code: 'OUTPUT_LIMIT',
        message: `the job printed more than ${max} bytes (DOCKER_AGENT_MAX_OUTPUT_BYTES); the rest of its output is dropped, the job goes on`,
      });
    }
    return events;
  }

  private agentHealth(jobId: string, h: { memoryBytes: number; cpuPercent: number }): void {
    if (this.active.has(jobId) && !this.stopped) this.deps.store.update(jobId, { health: { ...h, at: new Date().toISOString() } });
  }

  // ── scheduling ─────────────────────────────────────────────────────────────

  /**
   * Starts queued jobs while there is room, oldest first, but never more than
   * DOCKER_AGENT_MAX_RUNNING_PER_PRINCIPAL of one principal at once: the slots past
   * that share stay free for the others' jobs.
   */
  pump(): void {
    if (this.stopped) return;
    const { config, store } = this.deps;
    const running = new Map<string, number>();
    // Jobs on named agents use their agents' containers, not the hub's slots.
    const own = [...this.active.values()].filter((a) => !a.agentId);
    for (const a of own) running.set(a.owner, (running.get(a.owner) ?? 0) + 1);
    let taken = own.length;
    for (;;) {
      const full = [...running].filter(([, n]) => n >= config.maxRunningPerPrincipal).map(([owner]) => owner);
      const [job] = store.nextQueued(1, full);
      if (!job) break;
      // A warm container of its profile turns a pool slot into the job's; a cold start needs a slot of its own.
      // A job from a snapshot needs that image: never a pooled container of the plain profile.
      const warm = job.spec.fromImage ? undefined : this.pool.take(job.profile, job.id);
      if (!warm) {
        if (taken >= config.maxJobs) break;
        // Waiting pooled containers count against the limit, but never keep a queued job from its slot.
        if (taken + this.pool.size >= config.maxJobs && !this.pool.evictOne()) break;
      }
      taken++;
      const owner = job.owner ?? '';
      running.set(owner, (running.get(owner) ?? 0) + 1);
      const a = new ActiveJob(job.id, owner, warm?.seq ?? 0, { bytes: 0, capped: false });
      this.active.set(job.id, a);
      void (warm ? this.runOn(job, a, warm) : this.run(job, a));
    }
    this.pool.refill();
  }

  private async run(job: Job, a: ActiveJob): Promise<void> {
    const { backend, profiles, bus, config, hubId } = this.deps;
    try {
      if (!this.transition(job.id, 'preparing')) return;
      const profile = profiles.get(job.profile);
      const image = job.spec.fromImage ?? await backend.prepare(profile, (p) => {
        if (!this.stopped) bus.publish(job.id, [{ type: 'progress', ...p }]);
      });
      if (a.ending || this.stopped) return;
      const token = newSecret('agt');
      const deadlineAt = Date.now() + job.spec.timeout * 1000 + this.graces.deadlineMs;
      if (!this.transition(job.id, 'starting', { image, agentTokenHash: hashToken(token), deadlineAt })) return;
      a.ref = await backend.start({
        jobId: job.id,
        hubId,
        image,
        profile,
        ...(job.spec.workspace ? { workspace: this.deps.workspaces.path(job.spec.workspace) } : {}),
        env: runtimeEnv(config, token),
      });
      this.deps.store.update(job.id, { containerId: a.ref.id });
      // Cancelled while the container was being created: finish() could not remove it.
      if (a.ending) return void (await backend.destroy(a.ref));
      this.watch(a, deadlineAt, true);
    } catch (err) {
      const e = err as HubError;
      await this.finish(job.id, 'error', {
        reason: e.message,
        events: [{ type: 'error', code: e.code ?? 'INTERNAL', message: [e.message, e.details?.output].filter(Boolean).join('\n') }],
      });
    }
  }

  /** Deadlines and the container's own end, for a job whose container runs. */
  private watch(a: ActiveJob, deadlineAt: number, awaitingAgent: boolean): void {
    const { backend, config } = this.deps;
    a.setTimer('deadline', deadlineAt - Date.now(), () => {
      const job = this.get(a.id);
      void this.finish(a.id, 'timed_out', { reason: `${this.timeoutReason(job, a)}; the agent did not report in time` });
    });
    if (awaitingAgent) {
      a.setTimer('connect', config.agentConnectTimeoutMs, () => {
        void this.failWithLogs(a, `the agent did not connect within ${config.agentConnectTimeoutMs / 1000} s`);
      });
    }
    backend.wait(a.ref!).then(
      ({ exitCode }) => {
        if (!a.ending) void this.failWithLogs(a, `the agent container stopped (exit code ${exitCode}) before the job ended`);
      },
      (err: Error) => {
        if (!a.ending) void this.failWithLogs(a, `the engine lost track of the job's container: ${err.message}`);
      },
    );
  }

  private async failWithLogs(a: ActiveJob, reason: string): Promise<void> {
    const logs = a.ref ? (await this.deps.backend.logs(a.ref, 20).catch(() => '')).trim() : '';
    await this.finish(a.id, 'error', {
      reason,
      events: [{ type: 'error', code: 'AGENT_LOST', message: logs ? `${reason}; its last words:\n${logs}` : reason }],
    });
  }

  private timeoutReason(job: Job, a: ActiveJob): string {
    const step = a.timedOutStep !== undefined ? job.spec.steps[a.timedOutStep] : undefined;
    return step?.timeout ? `step "${step.name}" ran past its ${step.timeout} s limit` : `job ran past its ${job.spec.timeout} s limit`;
  }

  /** Ends a job once: snapshot taken (if asked for), the final events stored, the container removed after (unless kept). */
  private async finish(
    id: string,
    state: Extract<JobState, 'succeeded' | 'failed' | 'timed_out' | 'cancelled' | 'error'>,
    opts: { exitCode?: number; reason?: string; events?: NewEvent[] } = {},
  ): Promise<void> {
    const a = this.active.get(id);
    // After stop() the store may be closed: what is still running is the next start's to settle.
    if (a?.ending || this.stopped) return;
    const job = this.deps.store.get(id);
    if (!job || isTerminal(job.state)) return;
    const events: NewEvent[] = [...(opts.events ?? [])];
    if (a) {
      a.ending = true;
      a.clearTimers();
      // An agent's runtime stays connected for its next job; one still running this job is told to stop it.
      if (!a.agentId) a.agent?.close(1000, `job ${state}`);
      else if (state !== 'succeeded' && state !== 'failed') a.agent?.send({ t: 'cancel', reason: opts.reason ?? state });
      if (a.ref && job.spec.snapshot && state !== 'error' && this.transition(id, 'snapshotting')) {
        const taken = await this.snapshotUnlessStopped(a, a.ref);
        if ('stopped' in taken) {
          state = 'cancelled';
          opts = { ...opts, reason: taken.stopped };
          events.push({ type: 'error', code: 'SNAPSHOT_FAILED', message: `the snapshot was not kept: ${taken.stopped}` });
        } else events.push(taken.event);
      }
      if (a.ref && !a.agentId && !job.spec.keep) this.removeLater(id, a.ref);
    }
    if (opts.exitCode !== undefined) events.push({ type: 'exit', code: opts.exitCode });
    this.transition(
      id,
      state,
      {
        endedAt: new Date().toISOString(),
        exitCode: opts.exitCode,
        reason: opts.reason,
        agentTokenHash: null,
        sessionHash: null,
        // env values are often secrets: an ended job never runs again, so only their names stay.
        spec: withoutEnvValues(job.spec),
      },
      events,
    );
    if (a) this.active.delete(id);
    if (job.agent) this.agents?.jobEnded(job.agent, id, state);
    else this.pool.release(id);
    this.pump();
  }

  /**
   * Removes an ended job's container without making the job wait for it: the
   * engine takes ~70-80 ms to remove one, and the job's output and exit are
   * stored already. stop() waits for what is still under way; a hub killed first
   * leaves the container to the next start's reapOrphans (its job has ended).
   */
  private removeLater(jobId: string, ref: ContainerRef): void {
    const removal = this.deps.backend
      .destroy(ref)
      .catch((err) => this.deps.log(`job ${jobId}: removing its container failed: ${err.message}`))
      .finally(() => this.removals.delete(ref.id));
    this.removals.set(ref.id, removal);
  }

  /**
   * The snapshot, unless a cancel or the time limit comes first: then the job ends
   * without it, and the image the commit makes anyway is removed when it is done.
   */
  private snapshotUnlessStopped(a: ActiveJob, ref: ContainerRef): Promise<{ event: NewEvent } | { stopped: string }> {
    return new Promise((resolve) => {
      let settled = false;
      const stop = (why: string) => {
        if (settled) return;
        settled = true;
        a.stopSnapshot = undefined;
        resolve({ stopped: why });
      };
      a.stopSnapshot = stop;
      a.setTimer('cancel', SNAPSHOT_TIMEOUT_MS, () => stop(`taking it took longer than ${SNAPSHOT_TIMEOUT_MS / 1000} s`));
      void this.snapshot(ref).then((event) => {
        if (!settled) {
          settled = true;
          a.stopSnapshot = undefined;
          a.clearTimer('cancel');
          return resolve({ event });
        }
        if (event.type === 'snapshot') {
          this.deps.snapshots.forget(ref.jobId);
          void this.deps.backend.removeImage(event.image).catch(() => {});
        }
      });
    });
  }

  /** The container committed to an image, as the event that says where to get it (or why not). */
  private async snapshot(ref: ContainerRef): Promise<NewEvent> {
    try {
      const snap = await this.deps.backend.snapshot(ref);
      this.deps.store.update(ref.jobId, { snapshot: snap });
      // Listed with the agents' snapshots under the job's id, so later jobs and agents can start from it.
      this.deps.snapshots.record({ id: ref.jobId, owner: this.deps.store.get(ref.jobId)?.owner ?? null, source: `job ${ref.jobId}`, ...snap });
      return { type: 'snapshot', ...snap, url: snapshotUrl(ref.jobId, this.deps.links) };
    } catch (err) {
      if (err instanceof HubError) return { type: 'error', code: err.code, message: err.message };
      return { type: 'error', code: 'SNAPSHOT_FAILED', message: `committing the container failed: ${(err as Error).message}` };
    }
  }

  /** Moves a job to a new state with its status event, if the lifecycle allows it. */
  private transition(id: string, to: JobState, patch: JobPatch = {}, before: NewEvent[] = []): boolean {
    const { store, bus } = this.deps;
    if (this.stopped) return false;
    const job = store.get(id);
    if (!job || !canTransition(job.state, to)) return false;
    const reason = patch.reason;
    bus.publish(id, [...before, { type: 'status', state: to, ...(reason ? { reason } : {}) }], () => store.update(id, { ...patch, state: to }));
    this.deps.onState?.(store.get(id)!, to);
    return true;
  }

  // ── restart ────────────────────────────────────────────────────────────────

  /**
   * After a restart: re-attach jobs whose containers still run (their runtimes dial
   * back in and resend what was not stored), end the others with the reason, queue
   * again what never started, and remove containers no job owns.
   */
  async recover(): Promise<void> {
    const { backend, store, hubId, log } = this.deps;
    // Jobs that ended under an older hub still hold their env values: remove them as finish() does now.
    for (const job of store.endedWithEnvValues()) store.update(job.id, { spec: withoutEnvValues(job.spec) });
    const containers = await backend.list(hubId);
    for (const step of recoveryPlan(store.unfinished(), containers)) {
      const { job } = step;
      if (step.action === 'requeue') this.transition(job.id, 'queued', { reason: step.reason });
      else if (step.action === 'fail') await this.finish(job.id, 'error', { reason: step.reason });
      else if (step.action === 'reattach') {
        const a = new ActiveJob(job.id, job.owner ?? '', job.agentSeq, store.outputUsage(job.id));
        a.ref = { id: step.container.id, jobId: job.id };
        this.active.set(job.id, a);
        this.watch(a, job.deadlineAt ?? Date.now(), true);
        log(`job ${job.id}: re-attached to its running container`);
      }
    }
    await this.reapOrphans(false, containers);
    this.pump();
  }

  /** Removes this hub's containers that no running job owns (kept ones stay); returns their ids. */
  async reapOrphans(dryRun: boolean, containers?: ContainerInfo[]): Promise<string[]> {
    const { backend, store, hubId, log } = this.deps;
    const held = new Set([...this.active.values()].map((a) => a.ref?.id));
    const orphan = (c: ContainerInfo): boolean => {
      // An ended job's container whose removal is under way is going already.
      if (this.removals.has(c.id)) return false;
      // What a container is comes from the hub's records first: a running job's may be a pooled one, or carry labels its snapshot image inherited.
      if (held.has(c.id)) return false;
      if (c.agentId) return !this.agents?.owns(c.agentId);
      if (c.pool) return !this.pool.owns(c);
      return !this.active.has(c.jobId) && !store.get(c.jobId)?.spec.keep;
    };
    const orphans = (containers ?? (await backend.list(hubId))).filter(orphan);
    if (!dryRun) {
      for (const c of orphans) {
        log(`removing container ${c.id.slice(0, 12)}: no running job owns it`);
        await backend.destroy(c).catch((err) => log(`removing ${c.id.slice(0, 12)} failed: ${err.message}`));
      }
    }
    return orphans.map((c) => c.id);
  }

  /** Stops timers (for a clean shutdown); running containers are left to the next start, ended jobs' ones go first. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const a of this.active.values()) a.clearTimers();
    // The containers waiting in the pool have no job to lose: they go now, the next start makes fresh ones.
    await Promise.all([this.pool.close(), ...this.removals.values()]);
  }
}

/** The spec with every env value (job and step level) replaced by "": the names say what was set. */
export function withoutEnvValues(spec: JobSpec): JobSpec {
  const blank = (env: Record<string, string> = {}) => Object.fromEntries(Object.keys(env).map((k) => [k, '']));
  return { ...spec, env: blank(spec.env), steps: spec.steps.map((st) => ({ ...st, ...(st.env ? { env: blank(st.env) } : {}) })) };
}

function stepSummary(s: StepSummary, msg: StepMessage): StepSummary {
  if (msg.phase === 'started') return { ...s, state: 'running' };
  if (msg.phase === 'skipped') return { ...s, state: 'skipped' };
  const state = msg.timedOut ? 'timed_out' : msg.cancelled ? 'cancelled' : msg.exitCode === 0 ? 'succeeded' : 'failed';
  return { ...s, state, exitCode: msg.exitCode, durationMs: msg.durationMs };
}

function taskOf(job: Job): AgentTask {
  return { steps: job.spec.steps, env: job.spec.env, timeout: job.spec.timeout };
}

// One job the hub is running, on its sandbox: a fresh one it starts, a pooled one
// it was given, or a named agent's it borrows. It applies what the runtime reports
// (output under the cap, steps, the end), owns the job's timers (its deadline, a
// cancel's grace, the wait for a snapshot), and ends the job once.
import type { AgentTask, StepMessage } from '../../schemas/types.gen.js';
import type { OutputFrame } from '../../schemas/agent-frame.js';
import type { Backend, ContainerRef } from '../backend/types.js';
import type { EventBus } from '../events/event-bus.js';
import type { HubConfig } from '../platform/config.js';
import { diskFailure, HubError } from '../platform/errors.js';
import type { Links } from '../platform/links.js';
import type { ProfileRegistry } from '../profiles/registry.js';
import { Sandbox, type SandboxDeps, type SandboxHolder, type SandboxSecrets } from '../sandboxes/sandbox.js';
import type { RuntimeHealth, RuntimeReport } from '../sandboxes/runtime-link.js';
import type { Snapshots } from '../snapshots/snapshots.js';
import type { NewEvent } from '../store/events.js';
import type { Job, JobStore, StepSummary } from '../store/jobs.js';
import type { WorkspaceStore } from '../workspaces/uploads.js';
import { JobSnapshot } from './job-snapshot.js';
import { isTerminal } from './lifecycle.js';
import type { EndState, JobStates } from './states.js';

/** How long the hub waits for a runtime, past what the runtime enforces itself. */
export interface Graces {
  /** Past a job's own time limit, for the runtime to report it. */
  deadlineMs: number;
  /** For a cancelled job's runtime to stop its steps and report. */
  cancelMs: number;
}

export interface RunDeps {
  config: HubConfig;
  hubId: string;
  store: JobStore;
  bus: EventBus;
  backend: Backend;
  profiles: ProfileRegistry;
  workspaces: WorkspaceStore;
  snapshots: Snapshots;
  links: Links;
  log: (msg: string) => void;
  sandboxes: SandboxDeps;
  states: JobStates;
  graces: Graces;
  /** Why a job's owner may no longer start jobs (its token revoked or expired), or nothing. */
  ownerRefused?: (owner: string) => string | undefined;
  /** Whether the owner may use a privileged profile now (its token's scopes, its OIDC entry's `+privileged`). */
  mayRunPrivileged?: (owner: string) => boolean;
  /** The job ended: out of the running set, so the next may start. */
  ended(run: RunningJob, state: EndState): void;
  /** A container removal under way (the reaper leaves it, a stopping hub waits for it). */
  removing(ref: ContainerRef, work: Promise<void>): void;
  /** A `keep` job of `owner` ended with its container kept: the owner's oldest kept ones past the limit go. */
  kept(owner: string): void;
}

type TimerName = 'deadline' | 'cancel';

export class RunningJob implements SandboxHolder {
  readonly label: string;
  readonly owner: string;
  sandbox?: Sandbox;
  private ending = false;
  private timedOutStep?: number;
  private readonly snapshot: JobSnapshot;
  private readonly timers = new Map<TimerName, NodeJS.Timeout>();

  constructor(
    private readonly deps: RunDeps,
    readonly id: string,
    owner: string | null | undefined,
    /** Output bytes stored so far, and whether the OUTPUT_LIMIT event was. */
    private readonly output: { bytes: number; capped: boolean },
    /** On a named agent: its id, and what it is told when the job ends. The sandbox is the agent's. */
    readonly onAgent?: { id: string; ended(state: EndState): void },
  ) {
    this.label = `job ${id}`;
    this.owner = owner ?? '';
    this.snapshot = new JobSnapshot(deps, id, this.owner);
  }

  private get job(): Job | undefined {
    return this.deps.store.get(this.id);
  }

  // ── starting ───────────────────────────────────────────────────────────────

  /** Prepares the profile's image (or the snapshot's) and starts a sandbox of its own. */
  async startFresh(): Promise<void> {
    const { backend, profiles, bus, states, hubId } = this.deps;
    try {
      const job = this.job;
      if (!job || !states.move(this.id, 'preparing')) return;
      const profile = profiles.get(job.profile);
      const image =
        job.spec.fromImage ??
        (await backend.prepare(profile, (p) => {
          if (!states.stopped) bus.publish(this.id, [{ type: 'progress', ...p }]);
        }));
      if (this.ending || states.stopped) return;
      const deadlineAt = this.deadlineAt(job);
      if (!states.move(this.id, 'starting', { image, deadlineAt })) return;
      this.setDeadline(deadlineAt);
      this.sandbox = new Sandbox(this.deps.sandboxes, this);
      this.sandbox.offerWorkspace(this.workspaceOf(job));
      const ref = await this.sandbox.start({ jobId: this.id, hubId, profile }, image);
      if (ref) states.update(this.id, { containerId: ref.id });
    } catch (err) {
      const e = err as HubError;
      await this.finish('error', {
        reason: e.message,
        events: [{ type: 'error', code: e.code ?? 'INTERNAL', message: [e.message, e.details?.output].filter(Boolean).join('\n') }],
      });
    }
  }

  /** Runs on a sandbox whose runtime is connected already: a pooled one it was handed, or its named agent's. */
  async startOn(sandbox: Sandbox): Promise<void> {
    const { states } = this.deps;
    const job = this.job;
    if (!job) return;
    this.sandbox = sandbox;
    const deadlineAt = this.deadlineAt(job);
    if (this.ending) return;
    const patch = { image: sandbox.image, containerId: sandbox.ref!.id, deadlineAt, startedAt: new Date().toISOString() };
    if (!states.moveThrough(this.id, ['preparing', 'starting', 'running'], patch)) return;
    // What the job brings is fetched by the runtime when its task comes, not baked into the container it was given.
    sandbox.offerWorkspace(this.workspaceOf(job));
    sandbox.send({ t: 'task', task: taskOf(job) });
    this.setDeadline(deadlineAt);
    this.recordNode();
  }

  /** Which host runs it, once it runs (asked of the backend, never of the runtime inside). */
  private recordNode(): void {
    const ref = this.sandbox?.ref;
    if (!ref) return;
    // Unknown when its service is gone already: nothing to record.
    void this.deps.backend.node(ref).then(
      (node) => {
        if (node && !this.deps.states.stopped) this.deps.states.update(this.id, { node });
      },
      () => {},
    );
  }

  /** After a restart: its container still runs, and its runtime dials back in with the secrets the job's row kept. */
  adopt(ref: ContainerRef, job: Job): void {
    this.sandbox = new Sandbox(this.deps.sandboxes, this, { seq: job.agentSeq });
    this.sandbox.adopt(ref, job.image ?? '', this.deps.store.secrets(job.id));
    this.setDeadline(job.deadlineAt ?? Date.now());
  }

  // ── its sandbox (when it is the job's own) ─────────────────────────────────

  connected(first: boolean): AgentTask | undefined {
    const job = this.job;
    if (!job || this.ending) return undefined;
    if (job.state === 'starting' && this.deps.states.move(this.id, 'running', { startedAt: new Date().toISOString() })) this.recordNode();
    // The task travels in the first welcome; a pooled sandbox was sent it in a `task` message.
    return first ? taskOf(job) : undefined;
  }

  remember(secrets: SandboxSecrets): void {
    this.deps.states.update(this.id, { agentTokenHash: secrets.tokenHash, sessionHash: secrets.sessionHash });
  }

  health(h: RuntimeHealth): void {
    this.deps.states.update(this.id, { health: { ...h, at: new Date().toISOString() } });
  }

  lost(reason: string, lastWords: string, code: 'NODE_LOST' | 'AGENT_LOST' = 'AGENT_LOST'): void {
    this.background(
      this.finish('error', {
        reason,
        events: [{ type: 'error', code, message: lastWords ? `${reason}; its last words:\n${lastWords}` : reason }],
      }),
    );
  }

  diskFull(message: string): void {
    this.background(this.finish('error', { reason: message, events: [{ type: 'error', code: 'DISK_LIMIT', message }] }));
  }

  /**
   * Applies one report its runtime had not sent before. A store that cannot take it
   * (the hub's disk is full) ends this job, not the runtime's channel or the hub.
   */
  report(msg: RuntimeReport): void {
    try {
      this.apply(msg);
    } catch (err) {
      const full = diskFailure(err);
      if (!full) throw err;
      this.deps.log(`job ${this.id}: ${full.message}; the job ends`);
      this.background(this.finish('error', { reason: full.message, events: [{ type: 'error', code: full.code, message: full.message }] }));
    }
  }

  private apply(msg: RuntimeReport): void {
    const { store, bus, states } = this.deps;
    if (this.ending || states.stopped) return;
    if ('stream' in msg) {
      // Every output frame comes here: only the state is read, never the spec (which may be a megabyte).
      if (!store.stateOf(this.id)) return;
      const events = this.capOutput(msg);
      if (events.length) bus.publish(this.id, events, () => store.setAgentSeq(this.id, msg.n));
      else store.setAgentSeq(this.id, msg.n);
      return;
    }
    const job = this.job;
    if (!job) return;
    if (msg.t === 'step') {
      const steps = job.steps.map((s, i) => (i === msg.step ? stepSummary(s, msg) : s));
      if (msg.timedOut) this.timedOutStep = msg.step;
      const { t: _t, n: _n, ...rest } = msg;
      bus.publish(this.id, [{ type: 'step', ...rest, name: job.spec.steps[msg.step]?.name ?? `step ${msg.step + 1}` }], () =>
        store.update(this.id, { steps, agentSeq: msg.n }),
      );
    } else {
      store.setAgentSeq(this.id, msg.n);
      const reason =
        msg.outcome === 'timed_out'
          ? this.timeoutReason(job)
          : msg.outcome === 'cancelled'
            ? 'cancelled by request'
            : msg.outcome === 'error'
              ? (msg.reason ?? 'the runtime could not run the task')
              : undefined;
      // After the channel has acknowledged `done`, so the runtime learns it was stored before the channel closes.
      setImmediate(() => this.background(this.finish(msg.outcome, { exitCode: msg.exitCode, reason })));
    }
  }

  /**
   * A frame's events under the job's output cap: bytes past DOCKER_AGENT_MAX_OUTPUT_BYTES
   * are dropped (still acknowledged, so the runtime does not hold them), one error
   * event says so, and the job goes on: its steps' exit codes decide how it ends.
   */
  private capOutput(msg: OutputFrame): NewEvent[] {
    const max = this.deps.config.maxOutputBytes;
    const room = Math.max(0, max - this.output.bytes);
    const kept = msg.data.length > room ? msg.data.subarray(0, room) : msg.data;
    this.output.bytes += kept.length;
    const events: NewEvent[] = kept.length ? [{ type: msg.stream, step: msg.step, data: kept }] : [];
    if (kept.length < msg.data.length && !this.output.capped) {
      this.output.capped = true;
      events.push({
        type: 'error',
        code: 'OUTPUT_LIMIT',
        message: `the job printed more than ${max} bytes (DOCKER_AGENT_MAX_OUTPUT_BYTES); the rest of its output is dropped, the job goes on`,
      });
    }
    return events;
  }

  // ── ending ─────────────────────────────────────────────────────────────────

  /** Cancels it: a running runtime is told and given its grace; otherwise it ends at once. */
  async cancel(reason: string): Promise<void> {
    const job = this.job;
    if (!job) return;
    if (job.state === 'snapshotting' && this.snapshot.taking) {
      // The commit under way cannot be taken back; the job does not wait for it, and its image is not kept.
      return this.snapshot.stop(reason);
    }
    if (job.state === 'running' && this.sandbox?.send({ t: 'cancel', reason })) {
      // The runtime stops the steps and reports what they printed; the timer is the backstop.
      this.setTimer('cancel', this.deps.graces.cancelMs, () => this.background(this.finish('cancelled', { reason })));
    } else await this.finish('cancelled', { reason });
  }

  /** Ends the job once: snapshot taken (if asked for), the final events stored, its own sandbox removed after (unless kept). */
  async finish(state: EndState, opts: { exitCode?: number; reason?: string; events?: NewEvent[] } = {}): Promise<void> {
    const { states } = this.deps;
    // After stop() the store may be closed: what is still running is the next start's to settle.
    if (this.ending || states.stopped) return;
    const job = this.job;
    if (!job || isTerminal(job.state)) return;
    this.ending = true;
    this.clearTimers();
    const events: NewEvent[] = [...(opts.events ?? [])];
    const sandbox = this.sandbox;
    await this.release(sandbox, state, opts.reason);
    if (sandbox?.ref && job.spec.snapshot && state !== 'error' && states.move(this.id, 'snapshotting')) {
      const stopped = await this.snapshot.takeInto(sandbox.ref, events);
      if (stopped) {
        state = 'cancelled';
        opts = { ...opts, reason: stopped };
      }
    }
    const kept = this.disposeOf(sandbox, job);
    if (opts.exitCode !== undefined) events.push({ type: 'exit', code: opts.exitCode });
    this.storeEnd(job, state, opts, events);
    this.deps.ended(this, state);
    if (kept) this.deps.kept(this.owner);
    this.onAgent?.ended(state);
  }

  /** Its own container, once the job is done with it: removed in the background, or kept (true) when the job asked for that. */
  private disposeOf(sandbox: Sandbox | undefined, job: Job): boolean {
    if (!sandbox?.ref || this.onAgent) return false;
    // DOCKER_AGENT_MAX_KEPT_PER_PRINCIPAL=0: this hub keeps no container, whatever a job asks.
    if (job.spec.keep && this.deps.config.maxKeptPerPrincipal > 0) return true;
    this.removeLater(sandbox);
    return false;
  }

  /** Stores the end; on a full disk the row stays as it was (the next start settles it) and the hub lets the job go all the same. */
  private storeEnd(job: Job, state: EndState, opts: { exitCode?: number; reason?: string }, events: NewEvent[]): void {
    try {
      this.deps.states.end(job, state, opts, events);
    } catch (err) {
      if (!diskFailure(err)) throw err;
      this.deps.log(`job ${this.id}: its end (${state}) could not be stored: ${(err as Error).message}`);
    }
  }

  /** The job is done with its sandbox: its own stops (kept for a snapshot); an agent's stays connected, told to stop what still runs of the job. */
  private async release(sandbox: Sandbox | undefined, state: EndState, reason: string | undefined): Promise<void> {
    if (!this.onAgent) return sandbox?.end(`job ${state}`, { keep: true });
    if (state !== 'succeeded' && state !== 'failed') sandbox?.send({ t: 'cancel', reason: reason ?? state });
  }

  /** Work nobody waits for (a timer's, a report's): a failure is logged with the job, never left to end the process. */
  private background(work: Promise<void>): void {
    work.catch((err: Error) => this.deps.log(`job ${this.id}: ${err?.stack ?? err}`));
  }

  /** Stops its timers (the hub is stopping; the next start adopts what runs). */
  stop(): void {
    this.clearTimers();
  }

  /**
   * Removes an ended job's container without making the job wait for it: the
   * engine takes ~70-80 ms to remove one, and the job's output and exit are
   * stored already. A hub killed first leaves it to the next start's reaper.
   */
  private removeLater(sandbox: Sandbox): void {
    const work = sandbox.end(`job ended`).catch((err: Error) => this.deps.log(`job ${this.id}: removing its container failed: ${err.message}`));
    this.deps.removing(sandbox.ref!, work);
  }

  // ── timers ─────────────────────────────────────────────────────────────────

  private deadlineAt(job: Job): number {
    return Date.now() + job.spec.timeout * 1000 + this.deps.graces.deadlineMs;
  }

  private setDeadline(at: number): void {
    this.setTimer('deadline', at - Date.now(), () => {
      const job = this.job;
      if (job) this.background(this.finish('timed_out', { reason: `${this.timeoutReason(job)}; the runtime did not report in time` }));
    });
  }

  /** The stored archive of the workspace the job brings, for its runtime to fetch. */
  private workspaceOf(job: Job): string | undefined {
    return job.spec.workspace ? this.deps.workspaces.path(job.spec.workspace) : undefined;
  }

  private timeoutReason(job: Job): string {
    const step = this.timedOutStep !== undefined ? job.spec.steps[this.timedOutStep] : undefined;
    return step?.timeout ? `step "${step.name}" ran past its ${step.timeout} s limit` : `job ran past its ${job.spec.timeout} s limit`;
  }

  /** Runs `fn` after `ms` (at once when past), unless the timer is cleared or the job ends first. */
  private setTimer(name: TimerName, ms: number, fn: () => void): void {
    clearTimeout(this.timers.get(name));
    this.timers.set(name, setTimeout(fn, Math.max(0, ms)));
  }

  private clearTimers(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }
}

function stepSummary(s: StepSummary, msg: StepMessage): StepSummary {
  if (msg.phase === 'started') return { ...s, state: 'running' };
  if (msg.phase === 'skipped') return { ...s, state: 'skipped' };
  const state = msg.timedOut ? 'timed_out' : msg.cancelled ? 'cancelled' : msg.exitCode === 0 ? 'succeeded' : 'failed';
  return { ...s, state, exitCode: msg.exitCode, durationMs: msg.durationMs };
}

export function taskOf(job: Job): AgentTask {
  return { steps: job.spec.steps, env: job.spec.env, timeout: job.spec.timeout, ...(job.spec.workspace ? { workspace: true } : {}) };
}

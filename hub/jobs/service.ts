// The jobs' client API: submit, get, list, cancel, and a job's snapshot; and the
// hub's start and stop for jobs (recovery.ts after a restart). Running them is the
// scheduler's (scheduler.ts) and each running job's (running-job.ts).
import { randomUUID } from 'node:crypto';
import type { JobRequest } from '../../schemas/types.gen.js';
import type { ContainerRef } from '../backend/types.js';
import { HubError } from '../platform/errors.js';
import { canSee, describe, isAdmin, requireScope, type Principal } from '../platform/principal.js';
import type { Sandbox } from '../sandboxes/sandbox.js';
import type { RuntimeReport } from '../sandboxes/runtime-link.js';
import type { StorageBudget } from '../store/storage-budget.js';
import type { WorkspaceOwners } from '../store/workspace-owners.js';
import type { NewEvent } from '../store/events.js';
import type { Job, JobSummary, ListQuery, StepSummary } from '../store/jobs.js';
import type { ContainerInfo } from '../backend/types.js';
import type { JobState } from '../../schemas/types.gen.js';
import { isTerminal } from './lifecycle.js';
import { jobSpec } from './job-spec.js';
import { recover } from './recovery.js';
import type { Graces, RunDeps } from './running-job.js';
import { Scheduler } from './scheduler.js';
import { JobStates, type EndState } from './states.js';

const GRACES: Graces = { deadlineMs: 10_000, cancelMs: 5_000 };

/** The named agent a job runs on, as the agents give it. */
export interface AgentOfJob {
  id: string;
  profile: string;
  env: Record<string, string>;
}

export interface JobServiceDeps extends Omit<RunDeps, 'states' | 'graces' | 'ended' | 'removing' | 'kept'> {
  workspaceOwners: WorkspaceOwners;
  budget: StorageBudget;
  /** Shorter in the lifecycle's unit tests. */
  graces?: Graces;
  /** Told of every change of a job's state (for the metrics). */
  onState?: (job: Job, state: JobState) => void;
}

export class JobService {
  private readonly states: JobStates;
  private readonly scheduler: Scheduler;

  constructor(private readonly deps: JobServiceDeps) {
    this.states = new JobStates(deps);
    this.scheduler = new Scheduler({ ...deps, states: this.states, graces: deps.graces ?? GRACES });
  }

  // ── clients ────────────────────────────────────────────────────────────────

  /**
   * Takes a job in, queued. One for a named agent comes through the agents (agents/
   * service.ts), which name the agent: it runs in the agent's container, with the
   * agent's profile and env, when the agent hands its sandbox over.
   */
  submit(req: JobRequest, principal: Principal, agent?: AgentOfJob): Job {
    const { config, profiles, store, bus } = this.deps;
    if (req.agent && !agent) throw new HubError('INTERNAL', `job for agent ${req.agent} submitted past the agents`);
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
    // Job snapshots count with the agents': checked now, and again when the container is committed.
    if (req.snapshot) this.deps.snapshots.checkRoom(principal, config.maxSnapshotsPerPrincipal);
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
    // Job rows are kept until pruned: their specs count against what the principal may keep.
    this.deps.budget.check(principal.id, describe(principal), Buffer.byteLength(JSON.stringify(spec)), 'a job spec');
    const id = randomUUID();
    const summary: StepSummary[] = spec.steps.map((s) => ({ name: s.name, state: 'pending' }));
    store.create({ id, owner: principal.id, ...(agent ? { agent: agent.id } : {}), profile: profile.name, spec, steps: summary });
    bus.publish(id, [{ type: 'status', state: 'queued' }]);
    const job = store.get(id)!;
    if (!agent) this.scheduler.pump();
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

  /** A job's state alone, without reading its spec (a follower asks on every wake-up); undefined when it is gone. */
  stateOf(id: string): JobState | undefined {
    return this.deps.store.stateOf(id);
  }

  /**
   * Where a shell in the job opens (someone else's job is a 404 like a missing one).
   * A privileged profile's container is root on the host: a shell there needs the
   * "privileged" scope now, whoever submitted the job (so does one whose profile is gone).
   */
  shellTarget(id: string, principal: Principal): ContainerRef {
    const job = this.get(id, principal);
    if (job.state !== 'running' || !job.containerId) throw new HubError('NOT_RUNNING', `job ${id} is ${job.state}; a shell needs a running job`);
    const profile = this.deps.profiles.entry(job.profile)?.profile;
    if (!profile || profile.privileged === true) {
      requireScope(principal, 'privileged', `job ${id} runs privileged profile ${job.profile}: a shell in it`);
    }
    return { id: job.containerId, jobId: id };
  }

  /** The job's snapshot as a `docker save` tar. */
  async snapshotArchive(id: string, principal: Principal, opts: { full?: boolean } = {}): Promise<NodeJS.ReadableStream> {
    const job = this.get(id, principal);
    if (!job.snapshot) {
      const why = job.spec.snapshot
        ? isTerminal(job.state)
          ? 'committing it failed (see its events)'
          : 'the job has not ended yet'
        : 'it was not asked for one (snapshot: true)';
      throw new HubError('NOT_FOUND', `job ${id} has no snapshot: ${why}`);
    }
    return this.deps.backend.exportImage(job.snapshot.image, opts);
  }

  /** The principal's jobs; admin's: everyone's. */
  list(q: Omit<ListQuery, 'owner'>, principal: Principal): JobSummary[] {
    return this.deps.store.list(isAdmin(principal) ? q : { ...q, owner: principal.id });
  }

  /** Cancels a job; without a principal, on the hub's own behalf (its agent was stopped or destroyed). */
  async cancel(id: string, principal: Principal | undefined, reason = 'cancelled by request'): Promise<Job> {
    const job = this.get(id, principal);
    if (isTerminal(job.state)) throw new HubError('JOB_ENDED', `job ${id} already ended (${job.state}); nothing to cancel`);
    const run = this.scheduler.get(id);
    if (run) await run.cancel(reason);
    else this.states.end(job, 'cancelled', { reason });
    return this.get(id);
  }

  /** Cancels what `owner` queued and has not started (its token was revoked); returns how many. */
  cancelQueued(owner: string, reason: string): number {
    const ids = this.deps.store.queuedOf(owner);
    for (const id of ids) {
      const job = this.deps.store.get(id);
      if (job?.state === 'queued') this.states.end(job, 'cancelled', { reason });
    }
    return ids.length;
  }

  // ── named agents (through the interface the agents declare) ───────────────

  /** Runs a queued job on a named agent's sandbox; `ended` tells the agent it is free again. */
  runOnAgent(job: Job, sandbox: Sandbox, agentId: string, ended: (state: EndState) => void): void {
    this.scheduler.runOnAgent(job, sandbox, agentId, ended);
  }

  /** A report of the agent's runtime for the job it runs. */
  agentReport(jobId: string, msg: RuntimeReport): void {
    this.scheduler.report(jobId, msg);
  }

  /** The agent a job ran on was stopped or failed under it: the job is cancelled, or with `failure` (a limit the agent broke) ends `error`. */
  async endOnAgent(jobId: string, reason: string, failure?: { code: 'DISK_LIMIT' | 'NODE_LOST'; message: string }): Promise<void> {
    const state: EndState = failure ? 'error' : 'cancelled';
    const events: NewEvent[] = failure ? [{ type: 'error', ...failure }] : [];
    const run = this.scheduler.get(jobId);
    if (run) await run.finish(state, { reason, events });
    else {
      const job = this.deps.store.get(jobId);
      if (job && !isTerminal(job.state)) this.states.end(job, state, { reason }, events);
    }
  }

  // ── the hub ────────────────────────────────────────────────────────────────

  /** Starts what queued jobs there is room for. */
  pump(): void {
    this.scheduler.pump();
  }

  /** The warm pool's state, for /health. */
  poolState() {
    return this.scheduler.pool.state();
  }

  /** Whether a container is one of the jobs' (running, being removed, pooled or kept): the reaper leaves those. */
  holds(c: ContainerInfo): boolean {
    return this.scheduler.holds(c);
  }

  /** After a restart: jobs whose containers still run are re-attached, the others settled (recovery.ts). */
  async recover(containers: ContainerInfo[]): Promise<void> {
    await recover(containers, {
      store: this.deps.store,
      states: this.states,
      log: this.deps.log,
      adopt: (job: Job, ref: ContainerRef) => this.scheduler.adopt(job, ref),
    });
    this.scheduler.pump();
  }

  /** Stops timers (for a clean shutdown); running containers are left to the next start, ended jobs' ones go first. */
  async stop(): Promise<void> {
    await this.scheduler.stop();
  }
}

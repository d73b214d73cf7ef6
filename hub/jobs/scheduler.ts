// The one scheduler: which queued job starts next and where. A job takes an idle
// sandbox from the warm pool when one of its profile and image waits, else a fresh
// one when the hub has a slot; a named agent's job runs when its agent hands over
// its sandbox. Each principal gets at most its share of the hub's slots at once.
import type { ContainerInfo, ContainerRef } from '../backend/types.js';
import type { Sandbox } from '../sandboxes/sandbox.js';
import { WarmPool } from '../sandboxes/pool.js';
import type { RuntimeReport } from '../sandboxes/runtime-link.js';
import type { Job } from '../store/jobs.js';
import { RunningJob, type Graces, type RunDeps } from './running-job.js';
import type { EndState, JobStates } from './states.js';

export type SchedulerDeps = Omit<RunDeps, 'ended' | 'removing' | 'kept'>;

export class Scheduler {
  private readonly running = new Map<string, RunningJob>();
  /** Containers of ended jobs still being removed, by container id. */
  private readonly removals = new Map<string, Promise<void>>();
  readonly pool: WarmPool;
  private readonly run: RunDeps;

  constructor(deps: SchedulerDeps) {
    this.run = {
      ...deps,
      ended: (job) => {
        this.running.delete(job.id);
        this.pump();
      },
      removing: (ref, work) => this.removing(ref, work),
      kept: (owner) => this.trimKept(owner),
    };
    this.pool = new WarmPool({
      ...deps.sandboxes,
      config: deps.config,
      hubId: deps.hubId,
      profiles: deps.profiles,
      load: () => ({ running: this.ownSlots().length, queued: deps.store.nextQueued(1).length > 0 }),
    });
  }

  private get states(): JobStates {
    return this.run.states;
  }

  /** The running job `id`, if this hub runs it. */
  get(id: string): RunningJob | undefined {
    return this.running.get(id);
  }

  /**
   * Starts queued jobs while there is room, oldest first, but never more than
   * DOCKER_AGENT_MAX_RUNNING_PER_PRINCIPAL of one principal at once: the slots past
   * that share stay free for the others' jobs.
   */
  pump(): void {
    if (this.states.stopped) return;
    const { config, store } = this.run;
    const perOwner = new Map<string, number>();
    const own = this.ownSlots();
    for (const r of own) perOwner.set(r.owner, (perOwner.get(r.owner) ?? 0) + 1);
    let taken = own.length;
    for (;;) {
      const full = [...perOwner].filter(([, n]) => n >= config.maxRunningPerPrincipal).map(([owner]) => owner);
      const [job] = store.nextQueued(1, full);
      if (!job) break;
      // Whoever queued it may have lost the right to run it since (a revoked or expired token).
      const refused = this.run.ownerRefused?.(job.owner ?? '') ?? this.privilegeRefused(job);
      if (refused) {
        this.states.end(job, 'cancelled', { reason: `not started: ${refused}` });
        continue;
      }
      const run = new RunningJob(this.run, job.id, job.owner, { bytes: 0, capped: false });
      // An idle sandbox of its profile (and its image: a job from a snapshot needs that one) turns a pool slot into the job's.
      const warm = this.pool.take(job.profile, job.spec.fromImage, run);
      if (!warm) {
        if (taken >= config.maxJobs) break;
        // Idle sandboxes count against the limit, but never keep a queued job from its slot.
        if (taken + this.pool.size >= config.maxJobs && !this.pool.evictOne()) break;
      }
      taken++;
      perOwner.set(run.owner, (perOwner.get(run.owner) ?? 0) + 1);
      this.running.set(job.id, run);
      this.detached(run, warm ? run.startOn(warm) : run.startFresh());
    }
    this.pool.refill();
  }

  /** Runs a queued job on a named agent's sandbox; `ended` tells the agent when it is free again. */
  runOnAgent(job: Job, sandbox: Sandbox, agentId: string, ended: (state: EndState) => void): void {
    if (this.states.stopped) return;
    const run = new RunningJob(this.run, job.id, job.owner, this.run.store.outputUsage(job.id), { id: agentId, ended });
    this.running.set(job.id, run);
    this.detached(run, run.startOn(sandbox));
  }

  /** A report of the named agent's runtime for the job it runs. */
  report(jobId: string, msg: RuntimeReport): void {
    this.running.get(jobId)?.report(msg);
  }

  /** After a restart: a job whose container still runs takes it on again. */
  adopt(job: Job, ref: ContainerRef): void {
    const run = new RunningJob(this.run, job.id, job.owner, this.run.store.outputUsage(job.id));
    this.running.set(job.id, run);
    run.adopt(ref, job);
  }

  /** Whether a container is a running job's, one being removed, the pool's, or a kept job's: the reaper leaves those. */
  holds(c: ContainerInfo): boolean {
    if (this.removals.has(c.id) || this.pool.owns(c)) return true;
    // By the hub's records first: a job's container may carry labels its snapshot image inherited.
    if ([...this.running.values()].some((r) => r.sandbox?.ref?.id === c.id)) return true;
    return this.running.has(c.jobId) || this.run.store.get(c.jobId)?.spec.keep === true;
  }

  /**
   * A principal keeps at most DOCKER_AGENT_MAX_KEPT_PER_PRINCIPAL containers of its
   * ended `keep` jobs (each at most DOCKER_AGENT_MAX_DISK_BYTES of writes): the
   * oldest past that go, so keeping never piles up disk without bound.
   */
  private trimKept(owner: string): void {
    const { store, backend, config, log } = this.run;
    for (const old of store.keptOf(owner).slice(config.maxKeptPerPrincipal)) {
      store.forgetContainer(old.id);
      const ref = { id: old.containerId, jobId: old.id };
      this.removing(
        ref,
        backend
          .destroy(ref)
          .then(() =>
            log(`job ${old.id}: its kept container was removed: ${owner} keeps at most ${config.maxKeptPerPrincipal} (DOCKER_AGENT_MAX_KEPT_PER_PRINCIPAL)`),
          )
          .catch((err: Error) => log(`job ${old.id}: removing its kept container failed: ${err.message}`)),
      );
    }
  }

  private removing(ref: ContainerRef, work: Promise<void>): void {
    this.removals.set(
      ref.id,
      work.finally(() => this.removals.delete(ref.id)),
    );
  }

  /** Stops timers and the pool (for a clean shutdown); running containers are left to the next start, ended jobs' ones go first. */
  async stop(): Promise<void> {
    this.states.stopped = true;
    for (const r of this.running.values()) r.stop();
    await Promise.all([this.pool.close(), ...this.removals.values()]);
  }

  /**
   * Why a queued job of a privileged profile may not start now, though it was allowed
   * at submit: the hub restarted without DOCKER_AGENT_ALLOW_PRIVILEGED, or its owner
   * lost the "privileged" scope (an OIDC entry's `+privileged` taken away).
   */
  private privilegeRefused(job: Job): string | undefined {
    if (!this.run.profiles.entry(job.profile)?.profile.privileged) return undefined;
    if (!this.run.config.allowPrivileged)
      return `profile ${job.profile} is privileged and this hub no longer allows privileged profiles (DOCKER_AGENT_ALLOW_PRIVILEGED)`;
    if (this.run.mayRunPrivileged?.(job.owner ?? '')) return undefined;
    return `profile ${job.profile} is privileged and its owner ${job.owner ?? '(none)'} no longer has the "privileged" scope (DOCKER_AGENT_OIDC_REPOSITORIES entries with +privileged, or a token with that scope)`;
  }

  /** Jobs that take one of the hub's slots: not those on named agents, which use their agents' containers. */
  private ownSlots(): RunningJob[] {
    return [...this.running.values()].filter((r) => !r.onAgent);
  }

  /** A job's start nobody waits for: a failure ends that job with the reason, never the process. */
  private detached(run: RunningJob, work: Promise<void>): void {
    work.catch((err: Error) => {
      this.run.log(`job ${run.id}: ${err?.stack ?? err}`);
      return run.finish('error', { reason: `the hub failed running it: ${err?.message ?? err}` }).catch(() => {});
    });
  }
}

export type { Graces };

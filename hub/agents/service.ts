// Named agents, as clients see them: long-lived, hardened containers with the runtime
// connected, each with a volume of its own at /workspace: create, look at, start,
// stop, destroy, snapshot, open a shell in, send a job to. Their containers' own
// life is live-agents.ts's; the jobs sent to an agent run there one at a time.
import { randomUUID } from 'node:crypto';
import type { AgentRequest, JobRequest } from '../../schemas/types.gen.js';
import { SNAPSHOT_REPO, type ContainerInfo, type ContainerRef } from '../backend/types.js';
import { HubError } from '../platform/errors.js';
import { canSee, isAdmin, requireScope, type Principal } from '../platform/principal.js';
import type { Agent } from '../store/agents.js';
import type { Job } from '../store/jobs.js';
import type { Snapshots } from '../snapshots/snapshots.js';
import type { Snapshot } from '../store/snapshots.js';
import type { HealthHistory } from './health-history.js';
import { LiveAgents, type LiveAgentsDeps } from './live-agents.js';

export { agentView } from './view.js';
export type { AgentJobs } from './live-agents.js';

export interface AgentServiceDeps extends LiveAgentsDeps {
  snapshots: Snapshots;
}

/** How long taking a snapshot may keep an agent paused and the caller waiting. */
const SNAPSHOT_TIMEOUT_MS = 5 * 60_000;

export class AgentService {
  private readonly live: LiveAgents;

  constructor(private readonly deps: AgentServiceDeps) {
    this.live = new LiveAgents(deps);
  }

  /** CPU and memory over the last minutes, by agent id. */
  get history(): HealthHistory {
    return this.live.history;
  }

  // ── clients ────────────────────────────────────────────────────────────────

  create(req: AgentRequest, principal: Principal): Agent {
    const { config, profiles, agents } = this.deps;
    requireScope(principal, 'jobs', 'creating an agent');
    // The CLI tells a job's id from an agent's name by its form.
    if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(req.name)) {
      throw new HubError('VALIDATION_FAILED', `agent name ${req.name} looks like a job id; pick another`, {
        issues: [{ path: '/name', message: 'must not look like a job id' }],
      });
    }
    const owned = agents.list(principal.id).length;
    if (owned >= config.maxAgentsPerPrincipal) {
      throw new HubError(
        'LIMIT_REACHED',
        `${principal.label} has ${owned} agents, the most this hub allows per principal (DOCKER_AGENT_MAX_AGENTS_PER_PRINCIPAL=${config.maxAgentsPerPrincipal}); destroy one first`,
        {
          limit: 'DOCKER_AGENT_MAX_AGENTS_PER_PRINCIPAL',
          max: config.maxAgentsPerPrincipal,
        },
      );
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
    this.live.bootLater(id);
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
    this.live.bootLater(agent.id);
    return this.deps.agents.get(agent.id) ?? agent;
  }

  /** Stops the container (what it ran ends; /workspace stays); the agent's queued jobs wait for its next start. */
  async stop(name: string, principal: Principal, reason = 'stopped by request'): Promise<Agent> {
    const agent = this.get(name, principal);
    await this.live.turns.run(agent.id, () => this.live.halt(agent.id, 'stopped', reason));
    return this.deps.agents.get(agent.id) ?? agent;
  }

  /** Removes the container and, unless kept, the volume; its unfinished jobs are cancelled. */
  async destroy(name: string, principal: Principal, opts: { keepVolume: boolean }): Promise<void> {
    const agent = this.get(name, principal);
    await this.live.turns.run(agent.id, async () => {
      // Destroyed by a call that came first: nothing left to do.
      if (!this.deps.agents.get(agent.id)) return;
      await this.live.halt(agent.id, 'stopped', 'destroyed');
      for (const job of this.deps.store.unfinishedOnAgent(agent.id)) {
        await this.deps.jobs.cancel(job.id, undefined, `agent ${agent.name} was destroyed`).catch(() => {});
      }
      if (!opts.keepVolume) await this.deps.backend.removeVolume(agent.volume);
      this.deps.agents.remove(agent.id);
      this.history.forget(agent.id);
      this.live.forget(agent.id);
    });
  }

  /** Commits the agent, paused while it is read, with its /workspace: a snapshot new agents and jobs can start from. */
  async snapshot(name: string, principal: Principal): Promise<Snapshot> {
    const agent = this.get(name, principal);
    return this.live.turns.run(agent.id, () => this.takeSnapshot(name, principal));
  }

  private async takeSnapshot(name: string, principal: Principal): Promise<Snapshot> {
    const agent = this.get(name, principal);
    const live = this.live.of(agent.id);
    if (agent.state !== 'running' || !live) throw new HubError('NOT_RUNNING', `agent ${name} is ${agent.state}; start it first`);
    this.deps.snapshots.checkRoom(principal, this.deps.config.maxSnapshotsPerPrincipal);
    const id = randomUUID();
    const image = `${SNAPSHOT_REPO}:${id}`;
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new HubError('SNAPSHOT_FAILED', `the snapshot of agent ${name} took longer than ${SNAPSHOT_TIMEOUT_MS / 1000} s`)),
        SNAPSHOT_TIMEOUT_MS,
      );
    });
    try {
      const taken = await Promise.race([this.deps.backend.snapshotAgent(live.sandbox.ref!, this.deps.profiles.get(agent.profile), image), limit]);
      this.live.touch(agent.id);
      return this.deps.snapshots.record({ id, owner: agent.owner, source: `agent ${name}`, image: taken.image, bytes: taken.bytes });
    } finally {
      clearTimeout(timer);
    }
  }

  /** The container to open a shell in; the agent counts as busy while it is open. */
  shellTarget(name: string, principal: Principal): { ref: ContainerRef; done: () => void } {
    const agent = this.get(name, principal);
    const live = this.live.of(agent.id);
    if (agent.state !== 'running' || !live) throw new HubError('NOT_RUNNING', `agent ${name} is ${agent.state}; start it first`);
    // Agents are made unprivileged, but a profile file can change under one: a privileged container's shell needs the scope now.
    const profile = this.deps.profiles.entry(agent.profile)?.profile;
    if (!profile || profile.privileged === true) {
      requireScope(principal, 'privileged', `agent ${name} runs privileged profile ${agent.profile}: a shell in it`);
    }
    live.shells++;
    this.live.touch(agent.id);
    return {
      ref: live.sandbox.ref!,
      done: () => {
        live.shells--;
        this.live.touch(agent.id);
      },
    };
  }

  /** Takes in a job for the agent it names (someone else's agent is a 404), to run when the agent is free. */
  submitJob(req: JobRequest & { agent: string }, principal: Principal): Job {
    const agent = this.get(req.agent, principal);
    const job = this.deps.jobs.submit(req, principal, { id: agent.id, profile: agent.profile, env: agent.env });
    this.live.dispatch(agent.id);
    return job;
  }

  /** After a restart: agents whose containers still run wait for their runtimes to dial back in; the others start afresh. */
  recover(containers: ContainerInfo[]): Promise<void> {
    return this.live.recover(containers);
  }

  /** Whether a container is an agent's, by the hub's records. */
  holds(c: ContainerInfo): boolean {
    return this.live.holds(c);
  }

  /** Stops timers (for a clean shutdown); running containers are re-attached by the next start. */
  close(): void {
    this.live.close();
  }
}

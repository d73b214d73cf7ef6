// Job rows. The state column only changes through the lifecycle table
// (jobs/lifecycle.ts); this module just reads and writes.
import type { AgentTask, JobState } from '../../schemas/types.gen.js';
import type { Db } from './db.js';
import { EnvVault } from './env-vault.js';

export interface JobSpec extends Omit<AgentTask, 'workspace'> {
  keep: boolean;
  /** Id of an uploaded workspace to unpack into /workspace. */
  workspace?: string;
  /** A snapshot's image to start from instead of the profile's. */
  fromImage?: string;
  snapshot?: boolean;
}

export type StepState = 'pending' | 'running' | 'succeeded' | 'failed' | 'skipped' | 'timed_out' | 'cancelled';

export interface StepSummary {
  name: string;
  state: StepState;
  exitCode?: number;
  durationMs?: number;
}

export interface Health {
  memoryBytes: number;
  cpuPercent: number;
  at: string;
}

export interface Snapshot {
  image: string;
  bytes: number;
}

export interface Job {
  id: string;
  seqNo: number;
  /** The principal that submitted it (principal.ts); null for jobs from before owners. */
  owner: string | null;
  /** The named agent it runs on (the agent's id), or none: a fresh container of its own. */
  agent?: string;
  state: JobState;
  profile: string;
  spec: JobSpec;
  steps: StepSummary[];
  createdAt: string;
  startedAt?: string;
  endedAt?: string;
  exitCode?: number;
  reason?: string;
  image?: string;
  containerId?: string;
  agentSeq: number;
  lastSeq: number;
  deadlineAt?: number;
  health?: Health;
  snapshot?: Snapshot;
  /** The host it ran on, where the backend has several (a Swarm node's hostname). */
  node?: string;
}

export interface EndedJob {
  profile: string;
  state: JobState;
  startedAt: string | null;
  endedAt: string;
}

interface Row {
  rowid: number;
  id: string;
  owner: string | null;
  agent: string | null;
  state: JobState;
  profile: string;
  spec: string;
  steps: string;
  created_at: string;
  started_at: string | null;
  ended_at: string | null;
  exit_code: number | null;
  reason: string | null;
  image: string | null;
  container_id: string | null;
  agent_seq: number;
  last_seq: number;
  deadline_at: number | null;
  health: string | null;
  snapshot: string | null;
  node: string | null;
}

/** A job's env values, as the vault keeps them: the job's and each step's. */
interface JobEnv {
  env: Record<string, string>;
  steps: Array<Record<string, string> | null>;
}

/** The spec with every env value (job and step level) replaced by "": the names say what was set. */
export function withoutEnvValues(spec: JobSpec): JobSpec {
  const blank = (env: Record<string, string> = {}) => Object.fromEntries(Object.keys(env).map((k) => [k, '']));
  return { ...spec, env: blank(spec.env), steps: spec.steps.map((st) => ({ ...st, ...(st.env ? { env: blank(st.env) } : {}) })) };
}

function envOf(spec: JobSpec): JobEnv | undefined {
  const set = (env?: Record<string, string>) => Object.values(env ?? {}).some((v) => v !== '');
  if (!set(spec.env) && !spec.steps.some((st) => set(st.env))) return undefined;
  return { env: spec.env, steps: spec.steps.map((st) => st.env ?? null) };
}

function withEnv(spec: JobSpec, values: JobEnv | undefined): JobSpec {
  if (!values) return spec;
  return { ...spec, env: values.env, steps: spec.steps.map((st, i) => (values.steps[i] ? { ...st, env: values.steps[i]! } : st)) };
}

function fromRow(r: Row, vault: EnvVault): Job {
  return {
    id: r.id,
    seqNo: r.rowid,
    owner: r.owner,
    ...(r.agent ? { agent: r.agent } : {}),
    state: r.state,
    profile: r.profile,
    spec: withEnv(JSON.parse(r.spec), vault.get(r.id) as JobEnv | undefined),
    steps: JSON.parse(r.steps),
    createdAt: r.created_at,
    startedAt: r.started_at ?? undefined,
    endedAt: r.ended_at ?? undefined,
    exitCode: r.exit_code ?? undefined,
    reason: r.reason ?? undefined,
    image: r.image ?? undefined,
    containerId: r.container_id ?? undefined,
    agentSeq: r.agent_seq,
    lastSeq: r.last_seq,
    deadlineAt: r.deadline_at ?? undefined,
    health: r.health ? JSON.parse(r.health) : undefined,
    snapshot: r.snapshot ? JSON.parse(r.snapshot) : undefined,
    ...(r.node ? { node: r.node } : {}),
  };
}

const COLUMNS = {
  state: 'state',
  startedAt: 'started_at',
  endedAt: 'ended_at',
  exitCode: 'exit_code',
  reason: 'reason',
  image: 'image',
  containerId: 'container_id',
  agentSeq: 'agent_seq',
  deadlineAt: 'deadline_at',
  agentTokenHash: 'agent_token_hash',
  sessionHash: 'session_hash',
  node: 'node',
} as const;

/** Columns that hold JSON, named as their fields. */
const JSON_COLUMNS = ['spec', 'steps', 'health', 'snapshot'];

export type JobPatch = Partial<
  Pick<Job, 'state' | 'startedAt' | 'endedAt' | 'exitCode' | 'reason' | 'image' | 'containerId' | 'agentSeq' | 'deadlineAt' | 'node'>
> & {
  spec?: JobSpec;
  steps?: StepSummary[];
  health?: Health;
  snapshot?: Snapshot;
  agentTokenHash?: string | null;
  sessionHash?: string | null;
};

/** A job as lists show it: of its spec, only the timeout. */
export type JobSummary = Omit<Job, 'spec'> & { spec: Pick<JobSpec, 'timeout'> };

const SUMMARY_COLUMNS = `id, owner, agent, state, profile, json_object('timeout', json_extract(spec, '$.timeout')) AS spec, steps, created_at,
  started_at, ended_at, exit_code, reason, image, container_id, agent_seq, last_seq, deadline_at, health, snapshot, node`;

/** Lists carry no env values. */
const NO_VALUES = new EnvVault();

export interface ListQuery {
  states?: JobState[];
  limit: number;
  /** Only jobs older than this `seqNo` (the `next` of the previous page). */
  before?: number;
  /** Only this owner's jobs (absent: everyone's, for admin). */
  owner?: string;
}

export class JobStore {
  /** `vault`: where env values are kept while a job has not ended (env-vault.ts); in memory when not given. */
  constructor(
    private readonly db: Db,
    private readonly vault = new EnvVault(),
  ) {}

  create(job: { id: string; owner: string; agent?: string; profile: string; spec: JobSpec; steps: StepSummary[] }): Job {
    const values = envOf(job.spec);
    if (values) this.vault.put(job.id, values);
    const spec = JSON.stringify(withoutEnvValues(job.spec));
    this.db
      .prepare('INSERT INTO jobs (id, owner, agent, state, profile, spec, steps, created_at, stored_bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
      .run(job.id, job.owner, job.agent ?? null, 'queued', job.profile, spec, JSON.stringify(job.steps), new Date().toISOString(), Buffer.byteLength(spec));
    return this.get(job.id)!;
  }

  get(id: string): Job | undefined {
    const row = this.db.prepare('SELECT rowid, * FROM jobs WHERE id = ?').get(id) as Row | undefined;
    return row && this.fromRow(row);
  }

  /** A job's state, without reading its spec (what a runtime's every frame and a follower's every wake ask). */
  stateOf(id: string): JobState | undefined {
    return (this.db.prepare('SELECT state FROM jobs WHERE id = ?').get(id) as { state: JobState } | undefined)?.state;
  }

  /** Drops the env values of jobs that are not `keep`'s (after a crash between a file and its row). */
  pruneEnv(keep: (id: string) => boolean): string[] {
    return this.vault.prune(keep);
  }

  private fromRow(r: Row): Job {
    return fromRow(r, this.vault);
  }

  /** The hashes a restarted hub knows a job's runtime by (its one-time token until spent, then its session). */
  secrets(id: string): { tokenHash: string | null; sessionHash: string | null } {
    const row = this.db.prepare('SELECT agent_token_hash, session_hash FROM jobs WHERE id = ?').get(id) as
      { agent_token_hash: string | null; session_hash: string | null } | undefined;
    return { tokenHash: row?.agent_token_hash ?? null, sessionHash: row?.session_hash ?? null };
  }

  update(id: string, patch: JobPatch): void {
    const sets: string[] = [];
    const values: unknown[] = [];
    if (patch.spec) {
      // Values go to the vault, names to the row; a spec without values (an ended job's) takes its file away.
      const env = envOf(patch.spec);
      if (env) this.vault.put(id, env);
      patch = { ...patch, spec: withoutEnvValues(patch.spec) };
    }
    for (const [key, value] of Object.entries(patch)) {
      if (value === undefined) continue;
      const json = JSON_COLUMNS.includes(key);
      sets.push(`${json ? key : COLUMNS[key as keyof typeof COLUMNS]} = ?`);
      values.push(json ? JSON.stringify(value) : value);
    }
    if (sets.length) this.db.prepare(`UPDATE jobs SET ${sets.join(', ')} WHERE id = ?`).run(...values, id);
    // An ended job's output is all there: what its owner keeps (storage-budget.ts) counts it from now on.
    if (patch.endedAt) {
      this.db
        .prepare('UPDATE jobs SET stored_bytes = stored_bytes + (SELECT coalesce(sum(length(data)), 0) FROM events WHERE job_id = ?) WHERE id = ?')
        .run(id, id);
    }
    if (patch.spec && !envOf(patch.spec)) this.vault.drop(id);
  }

  list(q: ListQuery): JobSummary[] {
    const where: string[] = [];
    const values: unknown[] = [];
    if (q.states?.length) {
      where.push(`state IN (${q.states.map(() => '?').join(',')})`);
      values.push(...q.states);
    }
    if (q.owner !== undefined) {
      where.push('owner = ?');
      values.push(q.owner);
    }
    if (q.before !== undefined) {
      where.push('rowid < ?');
      values.push(q.before);
    }
    // A list shows a job's timeout, not its spec: a page of 200 specs of a megabyte each is not read, nor parsed.
    const sql = `SELECT rowid, ${SUMMARY_COLUMNS} FROM jobs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY rowid DESC LIMIT ?`;
    return (this.db.prepare(sql).all(...values, q.limit) as Row[]).map((r) => fromRow(r, NO_VALUES) as JobSummary);
  }

  /** Output bytes a job has stored, and whether its OUTPUT_LIMIT event was (to go on after a restart). */
  outputUsage(id: string): { bytes: number; capped: boolean } {
    const row = this.db
      .prepare(
        `SELECT COALESCE(SUM(CASE WHEN type IN ('stdout','stderr') THEN length(data) END), 0) AS bytes,
                COUNT(CASE WHEN type = 'error' AND json_extract(payload, '$.code') = 'OUTPUT_LIMIT' THEN 1 END) AS capped
           FROM events WHERE job_id = ?`,
      )
      .get(id) as { bytes: number; capped: number };
    return { bytes: row.bytes, capped: row.capped > 0 };
  }

  setAgentSeq(id: string, n: number): void {
    this.db.prepare('UPDATE jobs SET agent_seq = ? WHERE id = ?').run(n, id);
  }

  /** The oldest queued jobs for fresh containers (not for a named agent) of owners not in `skip` (owner null counts as ''). */
  nextQueued(limit: number, skip: string[] = []): Job[] {
    const not = skip.length ? `AND coalesce(owner, '') NOT IN (${skip.map(() => '?').join(',')})` : '';
    const rows = this.db
      .prepare(`SELECT rowid, * FROM jobs WHERE state = 'queued' AND agent IS NULL ${not} ORDER BY rowid LIMIT ?`)
      .all(...skip, limit) as Row[];
    return rows.map((r) => this.fromRow(r));
  }

  /** A named agent's next job: the oldest queued one. */
  nextOnAgent(agentId: string): Job | undefined {
    const row = this.db.prepare(`SELECT rowid, * FROM jobs WHERE state = 'queued' AND agent = ? ORDER BY rowid LIMIT 1`).get(agentId) as Row | undefined;
    return row && this.fromRow(row);
  }

  /** The jobs of a named agent that have not ended. */
  unfinishedOnAgent(agentId: string): Job[] {
    const rows = this.db
      .prepare(`SELECT rowid, * FROM jobs WHERE agent = ? AND state IN ('queued','preparing','starting','running','snapshotting') ORDER BY rowid`)
      .all(agentId) as Row[];
    return rows.map((r) => this.fromRow(r));
  }

  /** Jobs that ended since `since` (of `owner` when given), the newest `limit`: what the task metrics are made of. */
  endedSince(since: string, owner: string | undefined, limit: number): EndedJob[] {
    const byOwner = owner === undefined ? '' : 'AND owner = ?';
    return this.db
      .prepare(`SELECT profile, state, started_at AS startedAt, ended_at AS endedAt FROM jobs WHERE ended_at >= ? ${byOwner} ORDER BY ended_at DESC LIMIT ?`)
      .all(since, ...(owner === undefined ? [] : [owner]), limit) as EndedJob[];
  }

  /** Jobs not ended, by state. */
  countUnfinished(): Record<string, number> {
    const rows = this.db
      .prepare(`SELECT state, count(*) AS n FROM jobs WHERE state IN ('queued','preparing','starting','running','snapshotting') GROUP BY state`)
      .all() as Array<{ state: string; n: number }>;
    return Object.fromEntries(rows.map((r) => [r.state, r.n]));
  }

  /** The owner's ended `keep` jobs whose containers are still kept, newest first. */
  keptOf(owner: string): Array<{ id: string; containerId: string }> {
    return this.db
      .prepare(
        `SELECT id, container_id AS containerId FROM jobs
           WHERE owner = ? AND ended_at IS NOT NULL AND container_id IS NOT NULL AND agent IS NULL AND json_extract(spec, '$.keep') = 1
           ORDER BY ended_at DESC, rowid DESC`,
      )
      .all(owner) as Array<{ id: string; containerId: string }>;
  }

  /** The job's container is gone (a kept one removed): the row no longer names it. */
  forgetContainer(id: string): void {
    this.db.prepare('UPDATE jobs SET container_id = NULL WHERE id = ?').run(id);
  }

  /** Ids of the owner's jobs that wait to start. */
  queuedOf(owner: string): string[] {
    return (this.db.prepare(`SELECT id FROM jobs WHERE state = 'queued' AND owner = ?`).all(owner) as { id: string }[]).map((r) => r.id);
  }

  countQueued(owner: string): number {
    return (this.db.prepare(`SELECT count(*) AS n FROM jobs WHERE state = 'queued' AND owner = ?`).get(owner) as { n: number }).n;
  }

  /** Ended jobs whose spec still holds an env value (stored by a hub from before values were removed at the end). */
  endedWithEnvValues(): Job[] {
    const rows = this.db
      .prepare(
        `SELECT rowid, * FROM jobs WHERE ended_at IS NOT NULL AND EXISTS
           (SELECT 1 FROM json_tree(jobs.spec) t WHERE t.type = 'text' AND t.value != '' AND t.path LIKE '%.env')`,
      )
      .all() as Row[];
    return rows.map((r) => this.fromRow(r));
  }

  /** Deletes ended jobs (and their events) that ended before `before`, but never the newest `keep` of them. */
  pruneEnded(before: string, keep: number, dryRun: boolean): string[] {
    const ids = (
      this.db
        .prepare(
          `SELECT id FROM jobs WHERE ended_at IS NOT NULL AND ended_at < ? AND id NOT IN
             (SELECT id FROM jobs WHERE ended_at IS NOT NULL ORDER BY ended_at DESC LIMIT ?)`,
        )
        .all(before, keep) as { id: string }[]
    ).map((r) => r.id);
    if (!dryRun && ids.length) {
      const delEvents = this.db.prepare('DELETE FROM events WHERE job_id = ?');
      const delJob = this.db.prepare('DELETE FROM jobs WHERE id = ?');
      this.db.transaction(() => {
        for (const id of ids) {
          delEvents.run(id);
          delJob.run(id);
        }
      })();
      for (const id of ids) this.vault.drop(id);
    }
    return ids;
  }

  /** Jobs that have not ended, oldest first. */
  unfinished(): Job[] {
    const rows = this.db
      .prepare(`SELECT rowid, * FROM jobs WHERE state IN ('queued','preparing','starting','running','snapshotting') ORDER BY rowid`)
      .all() as Row[];
    return rows.map((r) => this.fromRow(r));
  }
}

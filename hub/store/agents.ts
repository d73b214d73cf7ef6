// Named agents' rows. An agent keeps its name, owner, profile, env and volume for
// its whole life; its container, tokens and state change as it starts and stops.
import type { AgentState } from '../../schemas/types.gen.js';
import type { Db } from './db.js';
import { EnvVault } from './env-vault.js';
import type { Health } from './jobs.js';

export interface Agent {
  id: string;
  name: string;
  owner: string | null;
  profile: string;
  state: AgentState;
  env: Record<string, string>;
  /** Seconds without a task or a shell before it is stopped; undefined: never. */
  idleTimeout?: number;
  image?: string;
  containerId?: string;
  volume: string;
  /** The last message counter of its runtime the hub stored (see the runtime channel). */
  agentSeq: number;
  currentJob?: string;
  reason?: string;
  health?: Health;
  createdAt: string;
  lastActivityAt: string;
  /** A snapshot's image it starts from instead of its profile's. */
  fromImage?: string;
  /** The host holding its volume, where the backend has several (a Swarm node's hostname): it runs there only. */
  node?: string;
}

interface Row {
  id: string;
  name: string;
  owner: string | null;
  profile: string;
  state: AgentState;
  env: string;
  idle_timeout: number | null;
  image: string | null;
  container_id: string | null;
  volume: string;
  agent_seq: number;
  current_job: string | null;
  reason: string | null;
  health: string | null;
  created_at: string;
  last_activity_at: string;
  from_image: string | null;
  node: string | null;
}

function fromRow(r: Row, vault: EnvVault): Agent {
  const names = JSON.parse(r.env) as Record<string, string>;
  return {
    id: r.id,
    name: r.name,
    owner: r.owner,
    profile: r.profile,
    state: r.state,
    env: { ...names, ...(vault.get(r.id) as Record<string, string> | undefined) },
    ...(r.idle_timeout !== null ? { idleTimeout: r.idle_timeout } : {}),
    ...(r.image ? { image: r.image } : {}),
    ...(r.container_id ? { containerId: r.container_id } : {}),
    volume: r.volume,
    agentSeq: r.agent_seq,
    ...(r.current_job ? { currentJob: r.current_job } : {}),
    ...(r.reason ? { reason: r.reason } : {}),
    ...(r.health ? { health: JSON.parse(r.health) } : {}),
    createdAt: r.created_at,
    lastActivityAt: r.last_activity_at,
    ...(r.from_image ? { fromImage: r.from_image } : {}),
    ...(r.node ? { node: r.node } : {}),
  };
}

export type AgentPatch = Partial<{
  state: AgentState;
  image: string;
  containerId: string | null;
  tokenHash: string | null;
  sessionHash: string | null;
  agentSeq: number;
  currentJob: string | null;
  reason: string | null;
  health: Health;
  lastActivityAt: string;
  node: string;
}>;

const COLUMNS: Record<keyof AgentPatch, string> = {
  state: 'state',
  image: 'image',
  containerId: 'container_id',
  tokenHash: 'token_hash',
  sessionHash: 'session_hash',
  agentSeq: 'agent_seq',
  currentJob: 'current_job',
  reason: 'reason',
  health: 'health',
  lastActivityAt: 'last_activity_at',
  node: 'node',
};

const blank = (env: Record<string, string>) => Object.fromEntries(Object.keys(env).map((k) => [k, '']));

export class AgentStore {
  /** `vault`: where env values are kept while the agent lives (env-vault.ts); in memory when not given. */
  constructor(
    private readonly db: Db,
    private readonly vault = new EnvVault(),
  ) {}

  /** Adds an agent; false when the name is taken. */
  create(a: {
    id: string;
    name: string;
    owner: string;
    profile: string;
    env: Record<string, string>;
    idleTimeout?: number;
    volume: string;
    fromImage?: string;
  }): boolean {
    const now = new Date().toISOString();
    if (Object.keys(a.env).length) this.vault.put(a.id, a.env);
    const result = this.db
      .prepare(
        `INSERT INTO agents (id, name, owner, profile, state, env, idle_timeout, volume, created_at, last_activity_at, from_image)
         VALUES (?, ?, ?, ?, 'starting', ?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO NOTHING`,
      )
      .run(a.id, a.name, a.owner, a.profile, JSON.stringify(blank(a.env)), a.idleTimeout ?? null, a.volume, now, now, a.fromImage ?? null);
    if (result.changes !== 1) this.vault.drop(a.id);
    return result.changes === 1;
  }

  get(id: string): Agent | undefined {
    const row = this.db.prepare('SELECT * FROM agents WHERE id = ?').get(id) as Row | undefined;
    return row && fromRow(row, this.vault);
  }

  byName(name: string): Agent | undefined {
    const row = this.db.prepare('SELECT * FROM agents WHERE name = ?').get(name) as Row | undefined;
    return row && fromRow(row, this.vault);
  }

  /** The hashes a restarted hub knows an agent's runtime by (its one-time token until spent, then its session). */
  secrets(id: string): { tokenHash: string | null; sessionHash: string | null } {
    const row = this.db.prepare('SELECT token_hash, session_hash FROM agents WHERE id = ?').get(id) as
      { token_hash: string | null; session_hash: string | null } | undefined;
    return { tokenHash: row?.token_hash ?? null, sessionHash: row?.session_hash ?? null };
  }

  /** Every agent, or one owner's, by name. */
  list(owner?: string): Agent[] {
    const rows = (
      owner === undefined
        ? this.db.prepare('SELECT * FROM agents ORDER BY name').all()
        : this.db.prepare('SELECT * FROM agents WHERE owner = ? ORDER BY name').all(owner)
    ) as Row[];
    return rows.map((r) => fromRow(r, this.vault));
  }

  update(id: string, patch: AgentPatch): void {
    const sets: string[] = [];
    const values: unknown[] = [];
    for (const [key, value] of Object.entries(patch)) {
      if (value === undefined) continue;
      sets.push(`${COLUMNS[key as keyof AgentPatch]} = ?`);
      values.push(key === 'health' ? JSON.stringify(value) : value);
    }
    if (sets.length) this.db.prepare(`UPDATE agents SET ${sets.join(', ')} WHERE id = ?`).run(...values, id);
  }

  /** Drops env values no agent row has (after a crash between a file and its row). */
  pruneEnv(): string[] {
    const ids = new Set((this.db.prepare('SELECT id FROM agents').all() as { id: string }[]).map((r) => r.id));
    return this.vault.prune((id) => ids.has(id));
  }

  /** Output bytes the agent's log holds. */
  logBytes(id: string): number {
    return (this.db.prepare('SELECT coalesce(sum(length(data)), 0) AS n FROM events WHERE job_id = ?').get(`agent:${id}`) as { n: number }).n;
  }

  /**
   * Rotates the agent's log: drops its oldest output until what is left is at most
   * `keep` bytes (its lifecycle events stay); returns the bytes left. Followers read
   * on from the seq they are at, so they only miss what they had not yet read.
   */
  trimLog(id: string, keep: number): number {
    const key = `agent:${id}`;
    const cut = this.db
      .prepare(
        `SELECT seq FROM (SELECT seq, sum(length(data)) OVER (ORDER BY seq DESC) AS newer FROM events WHERE job_id = ? AND data IS NOT NULL)
         WHERE newer > ? ORDER BY seq DESC LIMIT 1`,
      )
      .get(key, keep) as { seq: number } | undefined;
    if (cut) this.db.prepare('DELETE FROM events WHERE job_id = ? AND seq <= ? AND data IS NOT NULL').run(key, cut.seq);
    return this.logBytes(id);
  }

  /** Removes the agent and its log (its lifecycle and its jobs' output as the agent saw it). */
  remove(id: string): void {
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM events WHERE job_id = ?').run(`agent:${id}`);
      this.db.prepare('DELETE FROM agents WHERE id = ?').run(id);
    })();
    this.vault.drop(id);
  }
}

// What one principal keeps on the hub's disk, in bytes: its job rows (spec and
// output), snapshots, uploads and named agents' logs, against
// DOCKER_AGENT_MAX_STORED_BYTES_PER_PRINCIPAL. Checked before anything new is kept
// (a submit, an upload, a snapshot), so no principal can fill the disk the others
// share. Every sum reads an index or a small table, never a job's spec.
import { HubError } from '../platform/errors.js';
import type { Db } from './db.js';

export interface StorageUsage {
  jobs: number;
  snapshots: number;
  uploads: number;
  agentLogs: number;
  total: number;
}

export class StorageBudget {
  private readonly queries;

  constructor(
    db: Db,
    private readonly max: number,
  ) {
    this.queries = {
      // Covered by jobs_owner_bytes; a running job's output is counted when it ends (it is capped by DOCKER_AGENT_MAX_OUTPUT_BYTES).
      jobs: db.prepare('SELECT coalesce(sum(stored_bytes), 0) AS n FROM jobs WHERE owner = ?'),
      snapshots: db.prepare('SELECT coalesce(sum(bytes), 0) AS n FROM snapshots WHERE owner = ?'),
      uploads: db.prepare('SELECT coalesce(sum(bytes), 0) AS n FROM workspace_owners WHERE owner = ?'),
      agentLogs: db.prepare(`SELECT coalesce(sum(length(e.data)), 0) AS n FROM agents a JOIN events e ON e.job_id = 'agent:' || a.id WHERE a.owner = ?`),
    };
  }

  usage(owner: string): StorageUsage {
    const n = (q: keyof typeof this.queries) => (this.queries[q].get(owner) as { n: number }).n;
    const u = { jobs: n('jobs'), snapshots: n('snapshots'), uploads: n('uploads'), agentLogs: n('agentLogs') };
    return { ...u, total: u.jobs + u.snapshots + u.uploads + u.agentLogs };
  }

  /** LIMIT_REACHED when keeping `adding` more bytes for `owner` (`what`) would pass the budget. */
  check(owner: string, label: string, adding: number, what: string): void {
    const u = this.usage(owner);
    if (u.total + adding <= this.max) return;
    throw new HubError(
      'LIMIT_REACHED',
      `${label} keeps ${u.total} bytes on this hub (jobs ${u.jobs}, snapshots ${u.snapshots}, uploads ${u.uploads}, agent logs ${u.agentLogs}); ` +
        `${what} of ${adding} bytes would pass the ${this.max} a principal may keep (DOCKER_AGENT_MAX_STORED_BYTES_PER_PRINCIPAL): ` +
        'delete snapshots or agents you no longer need, or ask the operator to prune old jobs',
      { limit: 'DOCKER_AGENT_MAX_STORED_BYTES_PER_PRINCIPAL', max: this.max, usage: u },
    );
  }
}

// The dashboard's live feed (GET /v1/live, server-sent events), as the hub sends it
// and the page reads it. Events:
//   overview   LiveOverview, whenever it changed
//   job        a JobEvent of the followed job (SSE id: its seq)
//   agent-log  a JobEvent of the followed agent's log (SSE id: its seq)
//   end        {reason}: the session or token stopped working
import type { AgentView, JobView, TaskStats } from './types.gen.js';

/** [unix seconds, CPU %, memory bytes], as the agent's runtime reported them. */
export type HealthPoint = [number, number, number];

export interface PoolState {
  idle: number;
  starting: number;
  minIdle: number;
  max: number;
}

/** What a container may write, who enforces it, and the free space the hub needs to take new work. */
export interface DiskHealth {
  /** Bytes a job's or agent's container may write to its own file system (DOCKER_AGENT_MAX_DISK_BYTES); 0: no limit. */
  limit: number;
  /** `quota`: the engine's storage driver caps it; `watch`: the hub measures each container and ends it past the limit; `off`: no limit. */
  enforcement: 'quota' | 'watch' | 'off';
  /** The free-space floor (DOCKER_AGENT_MIN_FREE_BYTES); 0: none. */
  minFree: number;
  /** Free bytes where the hub keeps its data. */
  dataDir: { path: string; free?: number };
  /** Free bytes on the engine's data root; `unchecked` says why not when the hub cannot see it. */
  engineRoot?: { path: string; free?: number; unchecked?: string };
  /** Set while free space is below the floor: the hub takes no new work. */
  problem?: string;
}

/** What GET /health answers. */
export interface HealthReport {
  /** `ok`, `degraded` (the hub lacks something it says), or `starting` before its first look. */
  status: string;
  /** When the hub last looked (the report is refreshed in the background, not per request). */
  checkedAt?: string;
  engine?: {
    backend?: string;
    version?: string;
    apiVersion?: string;
    reachable?: boolean;
    error?: string;
    /** A Swarm's nodes (the swarm backend): the report is degraded while one is not ready. */
    nodes?: Array<{ hostname?: string; state: string; availability: string; role: string }>;
  };
  network?: { name?: string; isolated?: boolean; problem?: string; rules?: string[] };
  pool?: Record<string, PoolState>;
  disk?: DiskHealth;
}

export interface LiveOverview {
  /** The caller's unfinished jobs, then its newest. */
  jobs: JobView[];
  agents: Array<AgentView & { samples: HealthPoint[] }>;
  pool: Record<string, PoolState>;
  health: HealthReport;
  stats: TaskStats;
}

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

/** What GET /health answers. */
export interface HealthReport {
  status: string;
  engine?: { backend?: string; version?: string; apiVersion?: string; reachable?: boolean; error?: string };
  network?: { name?: string; isolated?: boolean; problem?: string; rules?: string[] };
  pool?: Record<string, PoolState>;
}

export interface LiveOverview {
  /** The caller's unfinished jobs, then its newest. */
  jobs: JobView[];
  agents: Array<AgentView & { samples: HealthPoint[] }>;
  pool: Record<string, PoolState>;
  health: HealthReport;
  stats: TaskStats;
}

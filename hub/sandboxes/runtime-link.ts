// The hub's side of one connected runtime, as the runtime channel (WS /v1/agent)
// drives it: the link the hub sends on, and the session the runtime's reports
// arrive in. A sandbox (sandbox.ts) speaks these; nothing above it does.
import type { OutputFrame } from '../../schemas/agent-frame.js';
import type { DoneMessage, HubMessage, StepMessage } from '../../schemas/types.gen.js';

/** What the runtime channel can do with one connected runtime. */
export interface RuntimeLink {
  send(msg: HubMessage): void;
  close(code: number, reason: string): void;
}

/** What a runtime reports: a step's start or end, the job's end, or output. */
export type RuntimeReport = StepMessage | DoneMessage | OutputFrame;

export interface RuntimeHealth {
  memoryBytes: number;
  cpuPercent: number;
}

/** A connected runtime as the runtime channel drives it. */
export interface RuntimeSession {
  /** For the hub's log: `job …`, `agent …` or `pooled sandbox …`. */
  label: string;
  report(msg: RuntimeReport): void;
  health(h: RuntimeHealth): void;
  detach(): void;
}

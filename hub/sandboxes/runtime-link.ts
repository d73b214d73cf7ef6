// The hub's side of one connected runtime, as the runtime channel (WS /v1/agent) drives
// it: the link it sends on, the session its reports arrive in, and a container whose
// runtime is connected already. Every holder of a sandbox
// (a one-shot job, the warm pool, a named agent) speaks these, and nothing above.
import type { OutputFrame } from '../../schemas/agent-frame.js';
import type { DoneMessage, HubMessage, StepMessage } from '../../schemas/types.gen.js';
import type { ContainerRef } from '../backend/types.js';

/** What the agent channel can do with one connected runtime. */
export interface RuntimeLink {
  send(msg: HubMessage): void;
  close(code: number, reason: string): void;
}

/** A connected runtime as the agent channel drives it: a one-shot job's, or a named agent's. */
export interface RuntimeSession {
  /** For the hub's log: `job …` or `agent …`. */
  label: string;
  report(msg: StepMessage | DoneMessage | OutputFrame): void;
  health(h: { memoryBytes: number; cpuPercent: number }): void;
  detach(): void;
}

/** A container whose runtime is connected already (a named agent's, or a pooled one), lent to one job. */
export interface ConnectedContainer {
  link: RuntimeLink;
  ref: ContainerRef;
  /** The runtime's message counter so far: the job's messages come after it. */
  seq: number;
  image: string;
  env: Record<string, string>;
}

// A sandbox's states as a table, like the jobs' (jobs/lifecycle.ts): every change
// goes through here, and a sandbox that ended never moves again.
export type SandboxState = 'starting' | 'dialling' | 'connected' | 'disconnected' | 'ended';

export const SANDBOX_TRANSITIONS: Record<SandboxState, readonly SandboxState[]> = {
  // The container is being created and started; on a busy engine its runtime may dial in before the engine says it started.
  starting: ['dialling', 'connected', 'ended'],
  // The container runs (just started, or found running after a restart); its runtime has not dialled in.
  dialling: ['connected', 'ended'],
  // A newer connection replaces an older one: connected → connected.
  connected: ['connected', 'disconnected', 'ended'],
  // The connection dropped; the runtime dials again with its session secret.
  disconnected: ['connected', 'ended'],
  ended: [],
};

export function canMove(from: SandboxState, to: SandboxState): boolean {
  return SANDBOX_TRANSITIONS[from].includes(to);
}

// Which agents are idle past their idleTimeout: running, connected, no job running
// or queued, no shell open, and no activity for that long. The service stops them.
import type { Agent } from '../store/agents.js';

export interface Busy {
  /** Open shells of a connected agent; undefined when the hub holds no container for it. */
  shells(agentId: string): number | undefined;
  /** Whether a job waits for it. */
  queued(agentId: string): boolean;
}

export function idleAgents(agents: Agent[], now: number, busy: Busy): Agent[] {
  return agents.filter((agent) => {
    if (!agent.idleTimeout || agent.state !== 'running' || agent.currentJob) return false;
    const shells = busy.shells(agent.id);
    if (shells === undefined || shells > 0 || busy.queued(agent.id)) return false;
    return now - Date.parse(agent.lastActivityAt) >= agent.idleTimeout * 1000;
  });
}

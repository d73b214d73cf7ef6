// An agent as the API shows it (schemas/agent.schema.json).
import type { AgentView } from '../../schemas/types.gen.js';
import type { Agent } from '../store/agents.js';

export function agentView(a: Agent): AgentView {
  return {
    name: a.name,
    state: a.state,
    profile: a.profile,
    owner: a.owner,
    image: a.image ?? null,
    createdAt: a.createdAt,
    lastActivityAt: a.lastActivityAt,
    idleTimeout: a.idleTimeout ?? null,
    health: a.health ?? null,
    volume: a.volume,
    node: a.node ?? null,
    reason: a.reason ?? null,
    currentJob: a.currentJob ?? null,
  };
}

// How a container's runtime reaches the hub, in one place: the environment every
// runtime starts with (a job's, a warm pool's, a named agent's). By default the
// hub's Unix socket, bind-mounted read-only into the container, so it needs no
// network; DOCKER_AGENT_AGENT_URL for engines on other hosts.
import { AGENT_SOCKET_DIR_IN_CONTAINER, AGENT_SOCKET_NAME } from '../backend/types.js';
import type { HubConfig } from '../platform/config.js';

export function runtimeEnv(config: Pick<HubConfig, 'agentUrl' | 'healthIntervalMs'>, token: string): Record<string, string> {
  const hubUrl = config.agentUrl
    ? `${config.agentUrl.replace(/\/$/, '')}/v1/agent`
    : `ws+unix://${AGENT_SOCKET_DIR_IN_CONTAINER}/${AGENT_SOCKET_NAME}:/v1/agent`;
  return { DOCKER_AGENT_HUB_URL: hubUrl, DOCKER_AGENT_AGENT_TOKEN: token, DOCKER_AGENT_HEALTH_INTERVAL_MS: String(config.healthIntervalMs) };
}

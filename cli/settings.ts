// Where the CLI finds its hub: DOCKER_AGENT_URL / DOCKER_AGENT_TOKEN, else what
// `docker-agent login` saved in the user's config (mode 0600, as it holds a token).
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { CliError, EXIT } from './exit-codes.js';

export interface HubLogin {
  url: string;
  token: string;
}

export const DEFAULT_URL = 'http://127.0.0.1:9091';

export function configFile(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config'), 'docker-agent', 'config.json');
}

function saved(env: NodeJS.ProcessEnv): Partial<HubLogin> {
  try {
    return JSON.parse(readFileSync(configFile(env), 'utf8')) as Partial<HubLogin>;
  } catch {
    return {};
  }
}

/** The hub to talk to, or a usage error that says how to name one. */
export function resolveLogin(env: NodeJS.ProcessEnv = process.env): HubLogin {
  const file = saved(env);
  const url = env.DOCKER_AGENT_URL || file.url || DEFAULT_URL;
  const token = env.DOCKER_AGENT_TOKEN || file.token;
  if (!token) {
    throw new CliError(`no token for ${url}: run \`docker-agent login --token <token>\` or set DOCKER_AGENT_TOKEN`, EXIT.usage);
  }
  return { url, token };
}

export function saveLogin(login: HubLogin, env: NodeJS.ProcessEnv = process.env): string {
  const file = configFile(env);
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  writeFileSync(file, `${JSON.stringify(login, null, 2)}\n`, { mode: 0o600 });
  // An existing file keeps its mode on write: make sure it is the user's alone.
  chmodSync(file, 0o600);
  return file;
}

// `docker-agent-hub [flags]` serves the hub; `docker-agent-hub prepare` builds the
// images of the built-in profiles ahead of the first job (used by npm start/test).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DockerBackend } from './backend/docker/backend.js';
import { describeSettings, loadConfig, type HubConfig } from './config.js';
import { HubError } from './errors.js';
import { ProfileRegistry } from './profiles/registry.js';
import { startHub } from './server.js';

const log = (msg: string) => console.error(`[hub] ${msg}`);

async function prepare(config: HubConfig): Promise<void> {
  const backend = await DockerBackend.connect({ baseImage: config.baseImage, runtimeBundle: config.runtimeBundle });
  const profiles = new ProfileRegistry([config.builtinProfilesDir]);
  const started = Date.now();
  const image = await backend.prepare(profiles.get(config.defaultProfile), (p) =>
    console.error(`[setup] image ${config.defaultProfile}: ${p.current ? `step ${p.current}/${p.total} ` : ''}${p.message}`),
  );
  console.error(`[setup] image ${config.defaultProfile}: ${image} ready (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}

async function serveHub(config: HubConfig): Promise<void> {
  const hub = await startHub(config, log);
  const tokenFile = join(config.dataDir, 'token');
  log(`docker-agent hub ${hub.hubId} listening on ${hub.url}`);
  log(`data: ${config.dataDir}`);
  log(config.token ? 'API token: the one in DOCKER_AGENT_TOKEN' : existsSync(tokenFile) ? `API token: ${tokenFile}` : 'API token: as created earlier');
  const stop = async (signal: string) => {
    log(`${signal}: stopping (running containers are re-attached on the next start)`);
    await hub.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    console.log(`usage: docker-agent-hub [prepare] [flags]\n\nflags and environment variables:\n${describeSettings()}`);
    return;
  }
  const command = args[0] === 'prepare' ? args.shift() : 'serve';
  const config = loadConfig(args);
  if (command === 'prepare') await prepare(config);
  else await serveHub(config);
}

main().catch((err) => {
  console.error(err instanceof HubError ? `docker-agent: ${err.message}` : err);
  process.exit(err instanceof HubError && err.code === 'CONFIG_INVALID' ? 2 : 1);
});

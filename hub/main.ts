// `docker-agent-hub [flags]` serves the hub; `docker-agent-hub prepare` builds the
// images of the built-in profiles ahead of the first job (used by npm start/test);
// `docker-agent-hub token …`, `oidc …` and `uninstall` are the operator's admin tools.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ADMIN_USAGE, adminCommand } from './admin-cli.js';
import { DockerBackend } from './backend/docker/backend.js';
import { describeSettings, loadConfig, type HubConfig } from './platform/config.js';
import { HubError } from './platform/errors.js';
import { ProfileRegistry } from './profiles/registry.js';
import { startHub } from './server.js';

const log = (msg: string) => console.error(`[hub] ${msg}`);

/** Builds the images of the named profiles (default: the default profile), in parallel. */
async function prepare(config: HubConfig, names: string[]): Promise<void> {
  const backend = await DockerBackend.connect(config);
  const profiles = new ProfileRegistry(config.builtinProfilesDir);
  const wanted = names.includes('all') ? profiles.names() : names.length ? names : [config.defaultProfile];
  await Promise.all(
    wanted.map(async (name) => {
      const started = Date.now();
      const image = await backend.prepare(profiles.get(name), (p) =>
        console.error(`[setup] image ${name}: ${p.current ? `step ${p.current}/${p.total} ` : ''}${p.message}`),
      );
      console.error(`[setup] image ${name}: ${image} ready (${((Date.now() - started) / 1000).toFixed(1)} s)`);
    }),
  );
}

async function serveHub(config: HubConfig): Promise<void> {
  // The last line of defence, not the design: every piece of work ends its own failures with a reason, and one
  // that slips through is logged here instead of ending the hub for every other caller.
  process.on('unhandledRejection', (err) => log(`an unexpected failure was caught; the hub goes on: ${(err as Error)?.stack ?? err}`));
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
    console.log(`usage: docker-agent-hub [prepare [PROFILE… | all]] [flags]\n\nflags and environment variables:\n${describeSettings()}\n\n${ADMIN_USAGE}`);
    return;
  }
  if (['token', 'oidc', 'nodes', 'uninstall'].includes(args[0] ?? '')) {
    await adminCommand(args);
  } else if (args[0] === 'prepare') {
    // Profile names only; `prepare` takes its settings from the environment.
    await prepare(loadConfig([]), args.slice(1));
  } else await serveHub(loadConfig(args));
}

main().catch((err) => {
  console.error(err instanceof HubError ? `docker-agent: ${err.message}` : err);
  if (err instanceof HubError && typeof err.details?.output === 'string') console.error(err.details.output);
  process.exit(err instanceof HubError && err.code === 'CONFIG_INVALID' ? 2 : 1);
});

// Talks to the engine at the API version both sides speak: the engine's newest,
// capped at the newest this code is written for. Pinning one version would break
// either old engines (20.10 speaks 1.41) or new ones that refuse old versions.
import Docker from 'dockerode';
import { HubError } from '../../platform/errors.js';

const OLDEST = '1.41';
const NEWEST = '1.47';

function compare(a: string, b: string): number {
  const [a1, a2] = a.split('.').map(Number);
  const [b1, b2] = b.split('.').map(Number);
  return a1! - b1! || a2! - b2!;
}

export function negotiate(engine: { ApiVersion: string; MinAPIVersion?: string }): string {
  const chosen = compare(engine.ApiVersion, NEWEST) < 0 ? engine.ApiVersion : NEWEST;
  if (compare(chosen, OLDEST) < 0) {
    throw new HubError('ENGINE_UNAVAILABLE', `Docker engine speaks API ${engine.ApiVersion}; docker-agent needs ${OLDEST} or newer (Docker 20.10+)`);
  }
  if (engine.MinAPIVersion && compare(chosen, engine.MinAPIVersion) < 0) {
    throw new HubError('ENGINE_UNAVAILABLE', `Docker engine needs API ${engine.MinAPIVersion} or newer; docker-agent speaks up to ${NEWEST}`);
  }
  return chosen;
}

export interface Connection {
  docker: Docker;
  apiVersion: string;
  engineVersion: string;
}

/** dockerode's options for an engine address (`unix:///path`, `tcp://host:port`); none for DOCKER_HOST's own. */
export function engineAddress(host: string | undefined): Docker.DockerOptions {
  // DOCKER_HOST's own is dockerode's to read, with its TLS (DOCKER_CERT_PATH) and ssh:// ways.
  if (!host || host === process.env.DOCKER_HOST) return {};
  const url = /^(unix|tcp|http):\/\/(.+)$/.exec(host);
  if (!url) throw new HubError('CONFIG_INVALID', `${host} is not an engine address: expected unix:///path/docker.sock or tcp://host:port`);
  if (url[1] === 'unix') return { socketPath: url[2]! };
  const [address, port] = url[2]!.split(':');
  return { protocol: 'http', host: address!, port: Number(port ?? 2375) };
}

/** Connects to the engine at `host`, by default dockerode's (DOCKER_HOST's, or the default socket). */
export async function connectDocker(host?: string): Promise<Connection> {
  const address = engineAddress(host);
  let version: Docker.DockerVersion;
  try {
    // Unversioned paths are answered at the engine's own version: safe for the probe.
    version = await new Docker(address).version();
  } catch (err) {
    throw new HubError(
      'ENGINE_UNAVAILABLE',
      `cannot reach the Docker engine (${host || process.env.DOCKER_HOST || '/var/run/docker.sock'}): ${(err as Error).message}. ` +
        'Start dockerd or set DOCKER_HOST.',
    );
  }
  const apiVersion = negotiate(version as unknown as { ApiVersion: string; MinAPIVersion?: string });
  return { docker: new Docker({ ...address, version: `v${apiVersion}` }), apiVersion, engineVersion: version.Version };
}

// Images a Swarm runs come from a registry every node pulls from: the hub builds (or
// commits) on one engine, pushes there, and names the image by the digest the push
// gave, so no node ever runs a tag that has moved since.
import type Docker from 'dockerode';
import { HubError } from '../../platform/errors.js';

interface PushMessage {
  error?: string;
  aux?: { Digest?: string };
}

/** `registry/repo@sha256:…` for a local image `name:tag`, pushed from `docker` (the engine that holds it). */
export async function publish(docker: Docker, registry: string, image: string): Promise<string> {
  const [repo, tag = 'latest'] = splitTag(image.replace(/^[^/]+\.[^/]*\//, ''));
  const target = `${registry}/${repo}`;
  await docker.getImage(image).tag({ repo: target, tag });
  let digest = '';
  try {
    // The engine wants an auth header even for a registry without credentials.
    const stream = (await docker.getImage(`${target}:${tag}`).push({ authconfig: { serveraddress: registry } })) as NodeJS.ReadableStream;
    await new Promise<void>((resolve, reject) =>
      docker.modem.followProgress(
        stream,
        (err: Error | null) => (err ? reject(err) : resolve()),
        (m: PushMessage) => {
          if (m.error) reject(new Error(m.error));
          if (m.aux?.Digest) digest = m.aux.Digest;
        },
      ),
    );
  } catch (err) {
    throw new HubError('ENGINE_UNAVAILABLE', `pushing ${image} to the registry ${registry} failed: ${(err as Error).message} (DOCKER_AGENT_REGISTRY)`);
  } finally {
    // The local name stays the one the hub knows; the registry's is only for the nodes.
    await docker
      .getImage(`${target}:${tag}`)
      .remove({ noprune: true })
      .catch(() => {});
  }
  if (!digest) throw new HubError('ENGINE_UNAVAILABLE', `the registry ${registry} gave no digest for ${image}`);
  return `${target}@${digest}`;
}

/** `name:tag` → [name, tag]; a registry's port is not a tag. */
function splitTag(image: string): [string, string | undefined] {
  const at = image.lastIndexOf(':');
  return at > image.lastIndexOf('/') ? [image.slice(0, at), image.slice(at + 1)] : [image, undefined];
}

// A snapshot exported as only the layers it adds to its base image, in `docker
// save` format. `docker load` looks each layer up in the engine's store by its
// chain before it reads the layer's file, so on a host that has the base the
// archive loads as the very same image; on a host without it, load fails naming
// the missing layer file. The base is named (by image id and tags) in
// `docker-agent-base.json` inside the archive.
import type Docker from 'dockerode';
import type { Readable } from 'node:stream';
import { withoutLayers } from './save-filter.js';

interface ImageInfo {
  Id: string;
  Parent?: string;
  RepoTags?: string[];
  RootFS?: { Layers?: string[] };
}

/** The nearest tagged ancestor (the profile's image a snapshot was committed from), if the engine knows the chain. */
export async function baseOf(docker: Docker, image: string): Promise<ImageInfo | undefined> {
  let info = (await docker.getImage(image).inspect()) as ImageInfo;
  const own = new Set(info.RepoTags ?? []);
  while (info.Parent) {
    info = (await docker.getImage(info.Parent).inspect()) as ImageInfo;
    if ((info.RepoTags ?? []).some((t) => !own.has(t) && t !== '<none>:<none>')) return info;
  }
  return undefined;
}

/** `image` as a docker-save tar without the layers of its base; the full save when no base is known. */
export async function exportAddedLayers(docker: Docker, image: string): Promise<Readable> {
  const [own, base] = await Promise.all([docker.getImage(image).inspect() as Promise<ImageInfo>, baseOf(docker, image)]);
  const saved = (await docker.getImage(image).get()) as unknown as Readable;
  if (!base) return saved;
  const layers = own.RootFS?.Layers ?? [];
  const baseLayers = base.RootFS?.Layers ?? [];
  let shared = 0;
  while (shared < baseLayers.length && baseLayers[shared] === layers[shared]) shared++;
  // A layer the image adds again (an empty one, say) is stored once, under its first place: that one stays.
  const added = new Set(layers.slice(shared));
  const drop = layers.slice(0, shared).filter((d) => !added.has(d));
  return withoutLayers(saved, drop, (dropped) => [
    {
      name: 'docker-agent-base.json',
      content: JSON.stringify({ image: base.Id, tags: base.RepoTags ?? [], layers: drop.filter((d) => dropped.has(d)) }, null, 2),
    },
  ]).stream;
}

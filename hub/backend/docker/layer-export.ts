// A snapshot exported as only the layers it adds to its base image, in `docker
// save` format. `docker load` looks each layer up in the engine's store by its
// chain before it reads the layer's file, so on a host that has the base the
// archive loads as the very same image; on a host without it, load fails naming
// the missing layer file. The base is named (by image id and tags) in
// `docker-agent-base.json` inside the archive.
import type Docker from 'dockerode';
import { createReadStream, createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { extract, pack } from 'tar-stream';

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

async function readEntries(file: string, wanted: (name: string) => boolean): Promise<Map<string, Buffer>> {
  const found = new Map<string, Buffer>();
  const ex = extract();
  ex.on('entry', (header, stream, next) => {
    if (!wanted(header.name)) {
      stream.resume();
      stream.on('end', next);
      return;
    }
    const chunks: Buffer[] = [];
    stream.on('data', (c: unknown) => chunks.push(c as Buffer));
    stream.on('end', () => {
      found.set(header.name, Buffer.concat(chunks));
      next();
    });
  });
  await pipeline(createReadStream(file), ex);
  return found;
}

/** `image` as a docker-save tar without the layers of its base; the full save when no base is known. */
export async function exportAddedLayers(docker: Docker, image: string): Promise<Readable> {
  const base = await baseOf(docker, image);
  const saved = docker.getImage(image).get() as unknown as Promise<NodeJS.ReadableStream>;
  if (!base) return (await saved) as unknown as Readable;
  const dir = mkdtempSync(join(tmpdir(), 'da-export-'));
  const file = join(dir, 'image.tar');
  try {
    // The save lists layers before the manifest that orders them: it is read twice, so it goes to a file first.
    await pipeline(await saved, createWriteStream(file));
    const meta = await readEntries(file, (n) => n === 'manifest.json' || (n.endsWith('.json') && !n.includes('/')));
    const manifest = JSON.parse(meta.get('manifest.json')!.toString()) as Array<{ Config: string; Layers: string[] }>;
    const config = JSON.parse(meta.get(manifest[0]!.Config)!.toString()) as { rootfs: { diff_ids: string[] } };
    const baseLayers = base.RootFS?.Layers ?? [];
    const dropped = new Set<string>();
    for (const [i, diffId] of config.rootfs.diff_ids.entries()) {
      if (baseLayers[i] !== diffId) break;
      dropped.add(manifest[0]!.Layers[i]!);
    }
    const out = pack();
    const ex = extract();
    const source = createReadStream(file);
    const result = new PassThrough();
    // The reader may go away mid-way (a client that closes the download): everything stops, nothing throws, the file goes.
    let stopped = false;
    const stop = (err?: Error) => {
      if (stopped) return;
      stopped = true;
      source.destroy();
      ex.destroy();
      out.destroy();
      if (err) result.destroy(err);
      rmSync(dir, { recursive: true, force: true });
    };
    for (const s of [source, ex, out, result] as NodeJS.EventEmitter[]) s.on('error', (err: Error) => stop(err));
    result.on('close', () => stop());
    ex.on('entry', (header, stream, next) => {
      if (stopped || dropped.has(header.name)) {
        stream.resume();
        stream.on('end', next);
        return;
      }
      stream.pipe(out.entry(header, next));
    });
    ex.on('finish', () => {
      if (stopped) return;
      out.entry({ name: 'docker-agent-base.json' }, JSON.stringify({ image: base.Id, tags: base.RepoTags ?? [], layers: [...baseLayers.slice(0, dropped.size)] }, null, 2));
      out.finalize();
    });
    out.on('end', () => rmSync(dir, { recursive: true, force: true }));
    source.pipe(ex);
    out.pipe(result);
    return result;
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

// A `docker save` stream with some layers left out as it passes, without a spool.
// The engine names a layer's entries in two ways:
//  - the legacy layout (engines before 25): `<v1 id>/{VERSION,json,layer.tar}`,
//    where the v1 id is a digest of the layer's chain and its parent's v1 id. For
//    every layer but the image's top one, the `json` holds only that and an empty
//    config, so the ids of the layers to drop can be computed from their diff ids
//    once the first such `json` shows the empty config this engine writes;
//  - the OCI layout (engines 25 and later): `blobs/sha256/<digest>`, where an
//    uncompressed layer's digest is its diff id.
// Entries are tar-sorted, so a legacy layer's small `json` comes before its
// `layer.tar`; the few bytes before it are held until it says which layer it is.
import { createHash } from 'node:crypto';
import { PassThrough, type Readable } from 'node:stream';
import { extract, pack, type Header } from 'tar-stream';

const EPOCH = '1970-01-01T00:00:00Z';
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/**
 * The legacy v1 ids of the first layers of an image (as moby's v1.CreateID makes
 * them for layers below the top one), given their diff ids and the empty
 * container config as the engine writes it (JSON text).
 */
export function legacyLayerIds(diffIds: string[], containerConfig: string): string[] {
  const ids: string[] = [];
  let chain = '';
  for (const diffId of diffIds) {
    chain = chain ? `sha256:${sha256(`${chain} ${diffId}`)}` : diffId;
    const parent = ids.length ? `,"parent":${JSON.stringify(`sha256:${ids.at(-1)}`)}` : '';
    ids.push(sha256(`{"container_config":${containerConfig},"created":"${EPOCH}","layer_id":${JSON.stringify(chain)}${parent}}`));
  }
  return ids;
}

export interface FilteredSave {
  stream: Readable;
  /** The diff ids of the layers left out so far (all of them once the stream has ended). */
  dropped: Set<string>;
}

/**
 * `save` without the layers `drop` lists (diff ids of the image's first layers, in
 * order); `trailer` adds entries at the end. The result is destroyed with the
 * save's error, and destroying it (a reader gone mid-way) stops the save.
 */
export function withoutLayers(
  save: NodeJS.ReadableStream,
  drop: string[],
  trailer: (dropped: Set<string>) => Array<{ name: string; content: string }>,
): FilteredSave {
  const dropped = new Set<string>();
  const blobs = new Map(drop.map((d) => [`blobs/sha256/${d.replace(/^sha256:/, '')}`, d]));
  let legacy: Map<string, string> | undefined;
  /** Legacy layer dirs by verdict: the diff id left out, or '' for kept. */
  const dirs = new Map<string, string>();
  /** Entries of a legacy dir whose `json` has not come yet. */
  let held: Array<{ header: Header; data: Buffer }> = [];

  const out = pack();
  const ex = extract();
  const result = new PassThrough();
  let stopped = false;
  const stop = (err?: Error) => {
    if (stopped) return;
    stopped = true;
    (save as Readable).destroy?.();
    ex.destroy();
    out.destroy();
    if (err) result.destroy(err);
  };
  for (const s of [save, ex, out, result] as NodeJS.EventEmitter[]) s.on('error', (err: Error) => stop(err));
  result.on('close', () => stop());

  const readAll = async (stream: NodeJS.ReadableStream) => {
    const chunks: Buffer[] = [];
    for await (const c of stream) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  };
  const release = (keep: boolean) => {
    if (keep) for (const h of held) out.entry(h.header, h.data);
    held = [];
  };

  ex.on('entry', (header, stream, next) => {
    const skip = () => {
      stream.on('end', next);
      stream.resume();
    };
    if (stopped) return skip();
    const blob = blobs.get(header.name);
    if (blob) {
      dropped.add(blob);
      return skip();
    }
    const legacyDir = /^([0-9a-f]{64})\/(.*)$/.exec(header.name);
    if (!legacyDir) return stream.pipe(out.entry(header, next));
    const [, dir, file] = legacyDir as unknown as [string, string, string];
    let verdict = dirs.get(dir);
    if (verdict === undefined && file === 'layer.tar') {
      // No `json` before it (a save not in tar order): never held in memory, so kept.
      dirs.set(dir, (verdict = ''));
      release(true);
    }
    if (verdict !== undefined) {
      if (verdict) return skip();
      return stream.pipe(out.entry(header, next));
    }
    void readAll(stream as unknown as NodeJS.ReadableStream).then((data) => {
      held.push({ header, data });
      if (file === 'json') {
        const json = JSON.parse(data.toString()) as { id?: string; created?: string; container_config?: unknown };
        if (!legacy && json.created === EPOCH && json.container_config) {
          const ids = legacyLayerIds(drop, JSON.stringify(json.container_config));
          legacy = new Map(ids.map((id, i) => [id, drop[i]!]));
        }
        const diffId = legacy?.get(dir) ?? '';
        dirs.set(dir, diffId);
        if (diffId) dropped.add(diffId);
        release(!diffId);
      }
      next();
    }, stop);
  });
  ex.on('finish', () => {
    if (stopped) return;
    release(true);
    for (const e of trailer(dropped)) out.entry({ name: e.name }, e.content);
    out.finalize();
  });
  save.pipe(ex);
  out.pipe(result);
  return { stream: result, dropped };
}

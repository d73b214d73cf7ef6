// Uploaded workspaces: a tar (or gzipped tar) a client sends before it submits the
// job that starts from it. Each upload is checked entry by entry as it streams in
// (no absolute paths, no `..`, only files, folders and symlinks, within the size
// limit), stored once under the hash of its normalised content, and later copied
// into the job's /workspace owned by the user the job runs as.
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, utimesSync } from 'node:fs';
import { join, posix } from 'node:path';
import { PassThrough, Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import * as tar from 'tar-stream';
import { HubError } from '../platform/errors.js';

const WORKSPACE_TYPES = {
  'application/gzip': 'gzip',
  'application/x-gzip': 'gzip',
  'application/x-tar': 'tar',
} as const;

/** What one upload may hold; every check costs time linear in the entry's name. */
export interface WorkspaceLimits {
  /** Packed and unpacked bytes (DOCKER_AGENT_MAX_WORKSPACE_BYTES). */
  maxBytes: number;
  /** Bytes of one entry's name or link target (DOCKER_AGENT_MAX_ENTRY_NAME_BYTES). */
  maxNameBytes: number;
  /** Folders above one entry (DOCKER_AGENT_MAX_ENTRY_DEPTH). */
  maxDepth: number;
  /** Entries in one archive (DOCKER_AGENT_MAX_WORKSPACE_ENTRIES). */
  maxEntries: number;
}

export const DEFAULT_WORKSPACE_LIMITS: WorkspaceLimits = { maxBytes: 1024 ** 3, maxNameBytes: 4096, maxDepth: 64, maxEntries: 100_000 };

export interface SavedWorkspace {
  id: string;
  bytes: number;
  entries: number;
}

const ID = /^[0-9a-f]{64}$/;

/** An entry's path inside /workspace, or a reason it has none. */
function safeName(name: string): string | { refused: string } {
  const clean = posix.normalize(name.replace(/^(\.\/)+/, ''));
  if (name.startsWith('/') || clean === '..' || clean.startsWith('../')) return { refused: 'points outside the workspace' };
  return clean === '.' || clean === './' ? '' : clean.replace(/\/$/, '');
}

/** A name for messages: hostile names can be megabytes long. */
function shown(name: string): string {
  return JSON.stringify(name.length > 80 ? `${name.slice(0, 80)}…` : name);
}

/** How many path components a name has, counted without splitting it. */
function depthOf(name: string): number {
  let depth = 1;
  for (let i = 0; i < name.length - 1; i++) if (name.charCodeAt(i) === 47 /* / */) depth++;
  return depth;
}

/**
 * The archive's symlinks as a tree of path components, so "is this entry below one
 * of them?" walks the entry's name once instead of building every parent path
 * (which costs depth² and ran a hub out of memory).
 */
class SymlinkTree {
  private readonly root = new Map<string, Node>();

  add(path: string): void {
    let level = this.root;
    const parts = path.split('/');
    for (let i = 0; i < parts.length; i++) {
      let node = level.get(parts[i]!);
      if (!node) level.set(parts[i]!, (node = { link: false, children: new Map() }));
      if (i === parts.length - 1) node.link = true;
      level = node.children;
    }
  }

  /** The symlink an entry at `path` would be written through, if any. */
  above(path: string): string | undefined {
    if (this.root.size === 0) return undefined;
    const parts = path.split('/');
    let level = this.root;
    for (let i = 0; i < parts.length - 1; i++) {
      const node = level.get(parts[i]!);
      if (!node) return undefined;
      if (node.link) return parts.slice(0, i + 1).join('/');
      level = node.children;
    }
    return undefined;
  }
}

interface Node {
  link: boolean;
  children: Map<string, Node>;
}

/** Fails the stream once more than `max` bytes went through it. */
function limit(max: number, what: string): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      seen += chunk.length;
      if (seen > max) done(new HubError('BODY_TOO_LARGE', `${what} is larger than ${max} bytes (DOCKER_AGENT_MAX_WORKSPACE_BYTES)`));
      else done(null, chunk);
    },
  });
}

/** Copies one entry's body into the pack. */
function copyEntry(pack: tar.Pack, header: tar.Header, body: Readable): Promise<void> {
  return new Promise((resolve, reject) => {
    const sink = pack.entry(header, (err) => (err ? reject(err) : resolve()));
    sink.on('error', reject);
    body.on('error', reject);
    body.pipe(sink);
  });
}

/**
 * Re-packs a tar entry by entry: `map` may rename or re-own an entry, drop it
 * (null) or refuse it (throw). Resolves with the number of entries kept; on
 * failure both ends are destroyed, so whatever feeds or drains them stops too.
 */
async function repack(input: tar.Extract, output: tar.Pack, map: (header: tar.Header) => tar.Header | null): Promise<number> {
  let entries = 0;
  try {
    for await (const entry of input) {
      const mapped = map(entry.header);
      if (!mapped) {
        entry.resume();
        continue;
      }
      await copyEntry(output, mapped, entry as unknown as Readable);
      entries++;
    }
    output.finalize();
    return entries;
  } catch (err) {
    input.destroy(err as Error);
    output.destroy(err as Error);
    throw err;
  }
}

/** The first failure of several, preferring one that says what was wrong with the input. */
async function settle<T>(main: Promise<T>, ...others: Promise<unknown>[]): Promise<T> {
  const results = await Promise.allSettled([main, ...others]);
  const failures = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as Error] : []));
  if (failures.length) throw failures.find((e) => e instanceof HubError) ?? failures[0];
  return (results[0] as PromiseFulfilledResult<T>).value;
}

/** An upload being written, before it is checked and named by its hash. */
const TEMP_PREFIX = '.upload-';

export class WorkspaceStore {
  private readonly limits: WorkspaceLimits;

  constructor(
    private readonly dir: string,
    limits: Partial<WorkspaceLimits> = {},
  ) {
    this.limits = { ...DEFAULT_WORKSPACE_LIMITS, ...limits };
    // Uploads are the callers' code and data: only the hub's user reads them.
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // No upload outlives the hub that took it: what a crash left half-written is nobody's.
    for (const name of readdirSync(dir)) if (name.startsWith(TEMP_PREFIX)) rmSync(join(dir, name), { force: true });
  }

  /** Checks and stores an upload; the same content uploaded twice is stored once. */
  async save(body: Readable, contentType: string | undefined, { strip = 0 }: { strip?: number } = {}): Promise<SavedWorkspace> {
    const kind = WORKSPACE_TYPES[(contentType ?? '').split(';')[0]!.trim().toLowerCase() as keyof typeof WORKSPACE_TYPES];
    if (!kind) {
      throw new HubError(
        'VALIDATION_FAILED',
        `a workspace is a tar archive: send it with Content-Type ${Object.keys(WORKSPACE_TYPES).join(' or ')}, not ${contentType ?? 'none'}`,
      );
    }
    const input = tar.extract();
    const output = tar.pack();
    const symlinks = new SymlinkTree();
    const { maxBytes, maxNameBytes, maxDepth, maxEntries } = this.limits;
    const refuse = (h: tar.Header, why: string) => new HubError('VALIDATION_FAILED', `workspace entry ${shown(h.name)} ${why}`);
    const over = (h: tar.Header, why: string) => new HubError('ARCHIVE_LIMIT', `workspace entry ${shown(h.name)} ${why}`);
    let seen = 0;
    const copied = repack(input, output, (h) => {
      // The limits first, each one pass over the name: everything after them is bounded by them.
      if (++seen > maxEntries) throw over(h, `is entry number ${seen}; an archive may hold ${maxEntries} (DOCKER_AGENT_MAX_WORKSPACE_ENTRIES)`);
      for (const [what, value] of [
        ['name', h.name],
        ['link target', h.linkname ?? ''],
      ] as const) {
        const bytes = Buffer.byteLength(value);
        if (bytes > maxNameBytes) throw over(h, `has a ${what} of ${bytes} bytes; the limit is ${maxNameBytes} (DOCKER_AGENT_MAX_ENTRY_NAME_BYTES)`);
      }
      const depth = depthOf(h.name);
      if (depth > maxDepth) throw over(h, `is ${depth} levels deep; the limit is ${maxDepth} (DOCKER_AGENT_MAX_ENTRY_DEPTH)`);
      // Like tar --strip-components: archives of a commit keep everything in one top folder.
      const name = safeName(strip ? h.name.split('/').slice(strip).join('/') : h.name);
      if (typeof name !== 'string') throw refuse(h, name.refused);
      if (!['file', 'directory', 'symlink'].includes(h.type ?? 'file')) throw refuse(h, `is a ${h.type}; only files, folders and symlinks are taken`);
      if (!name) return null;
      // An entry below a symlink of the same archive would be written wherever the link points.
      const via = symlinks.above(name);
      if (via) throw refuse(h, `lies below the symlink ${JSON.stringify(via)}`);
      if (h.type === 'symlink') symlinks.add(name);
      // Files belong to whoever unpacks them (the runtime, as the container's user: runtime/workspace.ts); no setuid or setgid bits.
      return { ...h, name, mode: (h.mode ?? 0o644) & 0o1777, uid: 0, gid: 0, uname: '', gname: '', pax: undefined };
    });
    const hash = createHash('sha256');
    const tmp = join(this.dir, `${TEMP_PREFIX}${randomBytes(6).toString('hex')}`);
    try {
      const entries = await settle(
        copied,
        pipeline(body, limit(maxBytes, 'the upload'), kind === 'gzip' ? createGunzip() : new PassThrough(), limit(maxBytes, 'the unpacked workspace'), input),
        pipeline(
          output,
          new Transform({
            transform(chunk: Buffer, _enc, next) {
              hash.update(chunk);
              next(null, chunk);
            },
          }),
          createGzip(),
          createWriteStream(tmp, { mode: 0o600 }),
        ),
      );
      const id = hash.digest('hex');
      renameSync(tmp, this.file(id));
      return { id, bytes: statSync(this.file(id)).size, entries };
    } catch (err) {
      rmSync(tmp, { force: true });
      if (err instanceof HubError) throw err;
      throw new HubError('VALIDATION_FAILED', `the workspace is not a readable ${kind === 'gzip' ? 'gzipped ' : ''}tar archive: ${(err as Error).message}`);
    }
  }

  /** The stored archive of an id, or a 400 that says how to get one. */
  path(id: string): string {
    const file = ID.test(id) ? this.file(id) : '';
    if (!file || !existsSync(file)) {
      throw new HubError('WORKSPACE_NOT_FOUND', `no workspace ${id} on this hub: upload it first with POST /v1/workspaces`);
    }
    // In use: maintenance counts a workspace's age from its last use.
    const now = new Date();
    utimesSync(file, now, now);
    return file;
  }

  /** Uploads last used before `olderThan`; removed unless `dryRun`. */
  prune(olderThan: Date, dryRun: boolean): string[] {
    const removed: string[] = [];
    for (const name of readdirSync(this.dir)) {
      // Uploads still arriving are not workspaces yet.
      if (!name.endsWith('.tar.gz')) continue;
      const file = join(this.dir, name);
      const mtime = statSync(file, { throwIfNoEntry: false })?.mtimeMs;
      if (mtime === undefined || mtime >= olderThan.getTime()) continue;
      if (!dryRun) rmSync(file, { force: true });
      removed.push(name.replace(/\.tar\.gz$/, ''));
    }
    return removed;
  }

  private file(id: string): string {
    return join(this.dir, `${id}.tar.gz`);
  }
}

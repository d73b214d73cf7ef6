// Packs a folder (the Action's `workspace`, the CLI's `--workspace`) as a gzipped tar while it is uploaded: files,
// folders and symlinks as they are, `.git` left out unless asked for.
import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import * as tar from 'tar-stream';

async function* walk(root: string, rel: string, includeGit: boolean): AsyncGenerator<string> {
  const entries = await readdir(join(root, rel), { withFileTypes: true });
  entries.sort((a, b) => a.name.localeCompare(b.name));
  for (const e of entries) {
    if (e.name === '.git' && !includeGit) continue;
    const path = rel ? `${rel}/${e.name}` : e.name;
    yield path;
    if (e.isDirectory()) yield* walk(root, path, includeGit);
  }
}

async function addEntry(pack: tar.Pack, root: string, name: string): Promise<void> {
  const abs = join(root, name);
  const st = await lstat(abs);
  const base = { name, mode: st.mode & 0o7777, mtime: st.mtime };
  if (st.isDirectory()) return void pack.entry({ ...base, type: 'directory' });
  if (st.isSymbolicLink()) return void pack.entry({ ...base, type: 'symlink', linkname: await readlink(abs) });
  if (!st.isFile()) return; // sockets, fifos and devices mean nothing in another machine
  await new Promise<void>((resolve, reject) => {
    const sink = pack.entry({ ...base, type: 'file', size: st.size }, (err) => (err ? reject(err) : resolve()));
    const file = createReadStream(abs);
    file.on('error', reject);
    file.pipe(sink);
  });
}

export function packDirectory(root: string, { includeGit }: { includeGit: boolean }): Readable {
  const pack = tar.pack();
  const out = new PassThrough();
  (async () => {
    await lstat(root);
    for await (const name of walk(root, '', includeGit)) await addEntry(pack, root, name);
    pack.finalize();
  })().catch((err) => pack.destroy(err));
  pipeline(pack, createGzip(), out).catch((err) => out.destroy(err));
  return out;
}

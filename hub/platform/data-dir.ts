// The hub's data folder holds secrets (env/ has job env until the job ends,
// tokens' hashes, uploads of callers' code, the first API token): only the hub's
// own user may read it. Made so on every start, also for a folder an older hub
// created 0755 with files 0644.
import { chmodSync, closeSync, lstatSync, mkdirSync, openSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

export const DIR_MODE = 0o700;
export const FILE_MODE = 0o600;

/** Creates (or tightens) the data folder: folders 0700, files 0600, except the folders named in `open` (left as they are). */
export function secureDataDir(dir: string, open: string[] = []): void {
  mkdirSync(dir, { recursive: true, mode: DIR_MODE });
  tighten(dir, new Set(open.map((o) => join(dir, o))));
}

function tighten(dir: string, open: Set<string>): void {
  chmodSync(dir, DIR_MODE);
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (open.has(path)) continue;
    const st = lstatSync(path);
    if (st.isDirectory()) tighten(path, open);
    else if (st.isFile()) chmodSync(path, FILE_MODE);
  }
}

/** Creates a file 0600 if it is missing, so what opens it later (SQLite) does not make it 0644; SQLite gives -wal and -shm the same mode. */
export function touchPrivate(file: string): void {
  closeSync(openSync(file, 'a', FILE_MODE));
  chmodSync(file, FILE_MODE);
}

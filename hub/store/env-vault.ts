// Env values are kept out of SQLite: SQLite's WAL, its free pages and the disk's
// own copies of a rewritten page keep old content for an unknown time, so a value
// blanked in a row is not gone from the data folder. Each job's or agent's values
// are one file here instead, written before its row and unlinked when it ends;
// the row keeps only the names.
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DIR_MODE, FILE_MODE } from '../platform/data-dir.js';

export type EnvValues = object;

const NAME = /^[\w:-]+$/;
const MAX_REMEMBERED_MISSES = 4096;

export class EnvVault {
  /** Values read or written since start: a running job's are looked up on every state change. */
  private readonly cache = new Map<string, EnvValues>();
  /** Keys looked up that have no file (jobs without env values), so a row read on every state change costs no failing read; bounded. */
  private readonly none = new Set<string>();

  /** `dir` absent: values in memory only (a store that lives as long as its process). */
  constructor(private readonly dir?: string) {
    if (dir) mkdirSync(dir, { recursive: true, mode: DIR_MODE });
  }

  put(key: string, values: EnvValues): void {
    this.cache.set(key, values);
    this.none.delete(key);
    if (!this.dir) return;
    const file = this.file(key);
    // Whole or not at all: a half-written file would be a job that starts with half its env.
    writeFileSync(`${file}.tmp`, JSON.stringify(values), { mode: FILE_MODE });
    renameSync(`${file}.tmp`, file);
  }

  get(key: string): EnvValues | undefined {
    const hit = this.cache.get(key);
    if (hit || !this.dir || this.none.has(key)) return hit;
    try {
      const values = JSON.parse(readFileSync(this.file(key), 'utf8')) as EnvValues;
      this.cache.set(key, values);
      return values;
    } catch {
      if (this.none.size >= MAX_REMEMBERED_MISSES) this.none.clear();
      this.none.add(key);
      return undefined;
    }
  }

  drop(key: string): void {
    this.cache.delete(key);
    if (this.dir) rmSync(this.file(key), { force: true });
  }

  /** Drops every key `keep` says no to (what a crash left between a file and its row). */
  prune(keep: (key: string) => boolean): string[] {
    if (!this.dir) return [];
    const gone: string[] = [];
    for (const name of readdirSync(this.dir)) {
      const key = name.replace(/\.json(\.tmp)?$/, '');
      if (name.endsWith('.tmp') || !keep(key)) {
        rmSync(join(this.dir, name), { force: true });
        this.cache.delete(key);
        gone.push(key);
      }
    }
    return gone;
  }

  private file(key: string): string {
    if (!NAME.test(key)) throw new Error(`env vault key ${JSON.stringify(key)} is not a plain name`);
    return join(this.dir!, `${key}.json`);
  }
}

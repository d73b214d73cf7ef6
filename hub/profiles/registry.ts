// The profiles a job may name: the built-in ones shipped in profiles/, and those
// in the operator's folder (DOCKER_AGENT_PROFILES_DIR), which is looked at again
// whenever its files change, so an added or edited profile needs no restart.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Profile } from '../../schemas/types.gen.js';
import { HubError, type Issue } from '../platform/errors.js';
import { validateProfile } from '../platform/validation.js';

export interface ProfileProblem {
  file: string;
  issues: Issue[];
}

export interface ProfileEntry {
  profile: Profile;
  source: 'builtin' | 'user';
  file: string;
}

/** Reads and checks one profile file; the error names the file and each bad value's pointer. */
export function loadProfileFile(file: string): Profile {
  const { profile, issues } = readProfile(file);
  if (!profile) {
    throw new HubError('PROFILE_INVALID', `${file}: ${issues.map((i) => `${i.path || '(root)'} ${i.message}`).join('; ')}`, { file, issues });
  }
  return profile;
}

function readProfile(file: string): { profile?: Profile; issues: Issue[] } {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    return { issues: [{ path: '', message: `is not valid JSON: ${(err as Error).message}` }] };
  }
  const result = validateProfile(raw);
  return result.ok ? { profile: result.value, issues: [] } : { issues: result.issues };
}

function jsonFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => join(dir, f));
}

export class ProfileRegistry {
  private readonly builtin = new Map<string, ProfileEntry>();
  private user = new Map<string, ProfileEntry>();
  private userProblems: ProfileProblem[] = [];
  private userSignature = '';

  constructor(
    builtinDir: string,
    private readonly userDir?: string,
  ) {
    for (const file of jsonFiles(builtinDir)) {
      const profile = loadProfileFile(file);
      this.builtin.set(profile.name, { profile, source: 'builtin', file });
    }
  }

  names(): string[] {
    return [...this.entries().keys()].sort();
  }

  list(): ProfileEntry[] {
    return this.names().map((n) => this.entries().get(n)!);
  }

  /** User profile files that could not be used, and why. */
  problems(): ProfileProblem[] {
    this.refresh();
    return this.userProblems;
  }

  entry(name: string): ProfileEntry | undefined {
    return this.entries().get(name);
  }

  get(name: string): Profile {
    const e = this.entry(name);
    if (!e) {
      throw new HubError('PROFILE_NOT_FOUND', `unknown profile ${JSON.stringify(name)}; known profiles: ${this.names().join(', ')}`, {
        known: this.names(),
      });
    }
    return e.profile;
  }

  private entries(): Map<string, ProfileEntry> {
    this.refresh();
    // A user profile may replace a built-in one of the same name.
    return new Map([...this.builtin, ...this.user]);
  }

  /** Re-reads the user folder when a file in it was added, removed or changed. */
  private refresh(): void {
    if (!this.userDir) return;
    let files: string[];
    try {
      files = jsonFiles(this.userDir);
    } catch (err) {
      this.user = new Map();
      this.userProblems = [{ file: this.userDir, issues: [{ path: '', message: `cannot read the profiles folder: ${(err as Error).message}` }] }];
      this.userSignature = '';
      return;
    }
    const signature = files
      .map((f) => {
        const s = statSync(f, { throwIfNoEntry: false });
        return `${f}:${s?.mtimeMs}:${s?.size}`;
      })
      .join('|');
    if (signature === this.userSignature) return;
    this.userSignature = signature;
    const user = new Map<string, ProfileEntry>();
    const problems: ProfileProblem[] = [];
    for (const file of files) {
      const { profile, issues } = readProfile(file);
      if (!profile) problems.push({ file, issues });
      else if (user.has(profile.name))
        problems.push({ file, issues: [{ path: '/name', message: `${profile.name} is already defined by ${user.get(profile.name)!.file}` }] });
      else user.set(profile.name, { profile, source: 'user', file });
    }
    this.user = user;
    this.userProblems = problems;
  }
}

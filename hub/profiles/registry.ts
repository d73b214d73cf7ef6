// The profiles a job may name: the built-in ones shipped in profiles/, checked
// against schemas/profile.schema.json when the hub starts.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Profile } from '../../schemas/types.gen.js';
import { HubError } from '../errors.js';
import { validateProfile } from '../validation.js';

export function loadProfileFile(file: string): Profile {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new HubError('PROFILE_INVALID', `${file}: not valid JSON: ${(err as Error).message}`);
  }
  const result = validateProfile(raw);
  if (!result.ok) {
    throw new HubError('PROFILE_INVALID', `${file}: ${result.issues.map((i) => `${i.path || '(root)'} ${i.message}`).join('; ')}`, {
      file,
      issues: result.issues,
    });
  }
  return result.value;
}

export class ProfileRegistry {
  private readonly profiles = new Map<string, Profile>();

  constructor(dirs: string[]) {
    for (const dir of dirs) {
      for (const f of readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) {
        const p = loadProfileFile(join(dir, f));
        this.profiles.set(p.name, p);
      }
    }
  }

  names(): string[] {
    return [...this.profiles.keys()].sort();
  }

  all(): Profile[] {
    return this.names().map((n) => this.profiles.get(n)!);
  }

  get(name: string): Profile {
    const p = this.profiles.get(name);
    if (!p) {
      throw new HubError('PROFILE_NOT_FOUND', `unknown profile ${JSON.stringify(name)}; known profiles: ${this.names().join(', ')}`, {
        known: this.names(),
      });
    }
    return p;
  }
}

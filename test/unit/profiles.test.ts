import { mkdtempSync, rmSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { HubError } from '../../hub/platform/errors.js';
import { repoPath } from '../../hub/platform/paths.js';
import { loadProfileFile, ProfileRegistry } from '../../hub/profiles/registry.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'da-profiles-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, content: unknown): string {
  const file = join(dir, name);
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

describe('built-in profiles', () => {
  it('are the five documented ones plus the default, all valid', () => {
    const r = new ProfileRegistry(repoPath('profiles'));
    expect(r.names()).toEqual(['builder', 'default', 'deployer', 'docker-host', 'researcher', 'tester']);
    expect(r.get('docker-host').privileged).toBe(true);
    expect(
      r
        .list()
        .filter((e) => e.profile.privileged)
        .map((e) => e.profile.name),
    ).toEqual(['docker-host']);
  });
});

describe('broken profile files', () => {
  const cases: Array<[string, unknown, string, RegExp]> = [
    ['unknown key', { name: 'a', colour: 'red' }, '/colour', /is not a known field/],
    ['missing name', { description: 'x' }, '/name', /is required/],
    ['bad name', { name: 'Has Spaces' }, '/name', /must match pattern/],
    ['cpus of the wrong type', { name: 'a', resources: { cpus: 'two' } }, '/resources/cpus', /must be number/],
    ['memory without a unit it knows', { name: 'a', resources: { memory: 'lots' } }, '/resources/memory', /must match pattern/],
    ['unknown network', { name: 'a', network: 'host' }, '/network', /must be one of "none", "bridge"/],
    ['a file without content', { name: 'a', files: [{ path: '/etc/x' }] }, '/files/0/content', /is required/],
    ['a relative file path', { name: 'a', files: [{ path: 'etc/x', content: '' }] }, '/files/0/path', /must match pattern/],
    ['a setup task of an unknown type', { name: 'a', setup_tasks: [{ type: 'shell', command: 'true' }] }, '/setup_tasks/0/type', /must be equal to constant/],
    ['root without privileged', { name: 'a', user: '0:0' }, '/user', /uid 0 \(root\), which needs privileged: true/],
    ['uid "00" (root, spelled with two zeros)', { name: 'a', user: '00' }, '/user', /"00" is uid 0 \(root\), which needs privileged: true/],
    ['uid "0"', { name: 'a', user: '0' }, '/user', /uid 0 \(root\)/],
    ['"000:1000" (root with another group)', { name: 'a', user: '000:1000' }, '/user', /uid 0 \(root\)/],
    ['a user name ("root")', { name: 'a', user: 'root' }, '/user', /must be uid\[:gid\] as numbers.*names such as "root" are not resolved/],
    ['an id past 32 bits', { name: 'a', user: '4294967296' }, '/user', /ids must be at most 4294967294/],
    ['a package name with a space', { name: 'a', packages: ['git jq'] }, '/packages/0', /must match pattern/],
  ];
  for (const [what, content, pointer, message] of cases) {
    it(`rejects ${what}, naming the file and ${pointer}`, () => {
      const file = write('p.json', content);
      let err: HubError | undefined;
      try {
        loadProfileFile(file);
      } catch (e) {
        err = e as HubError;
      }
      expect(err?.code).toBe('PROFILE_INVALID');
      expect(err!.message).toContain(file);
      const issues = err!.details!.issues as { path: string; message: string }[];
      const issue = issues.find((i) => i.path === pointer);
      expect(issue, JSON.stringify(issues)).toBeDefined();
      expect(issue!.message).toMatch(message);
    });
  }

  it('takes root in a privileged profile and other uids anywhere', () => {
    expect(loadProfileFile(write('r.json', { name: 'r', user: '00', privileged: true })).user).toBe('00');
    expect(loadProfileFile(write('u.json', { name: 'u', user: '1001:0100' })).user).toBe('1001:0100');
  });

  it('rejects a file that is not JSON, saying so', () => {
    const file = write('p.json', '{ "name": ');
    expect(() => loadProfileFile(file)).toThrow(/p\.json: \(root\) is not valid JSON/);
  });

  it('reports every error of a file, not only the first', () => {
    const file = write('p.json', { name: 'a', network: 'host', timeout: -1, extra: 1 });
    expect(() => loadProfileFile(file)).toThrow(/\/network.*\/timeout.*\/extra|\/extra.*\/network/);
  });
});

describe('user profiles folder', () => {
  it('picks up added, edited and removed files without a restart, and reports broken ones', () => {
    const r = new ProfileRegistry(repoPath('profiles'), dir);
    expect(r.entry('mine')).toBeUndefined();

    const file = write('mine.json', { name: 'mine', timeout: 5 });
    expect(r.get('mine').timeout).toBe(5);
    expect(r.entry('mine')!.source).toBe('user');

    write('mine.json', { name: 'mine', timeout: 7 });
    utimesSync(file, new Date(), new Date(Date.now() + 5000)); // a distinct mtime even within one clock tick
    expect(r.get('mine').timeout).toBe(7);

    write('broken.json', { name: 'broken', network: 'host' });
    expect(r.problems()).toEqual([{ file: join(dir, 'broken.json'), issues: [{ path: '/network', message: 'must be one of "none", "bridge"' }] }]);
    expect(r.entry('broken')).toBeUndefined();

    unlinkSync(file);
    expect(() => r.get('mine')).toThrow(/unknown profile "mine"; known profiles: builder, default/);
  });
});

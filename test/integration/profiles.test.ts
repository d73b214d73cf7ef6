// The built-in profiles built on the real engine and proven by a smoke job each,
// and the image cache: never rebuilt without cause, always rebuilt with one, one
// build for jobs that want the same image at once.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HubClient, type JobEvent } from '../../client/index.js';
import { DockerBackend } from '../../hub/backend/docker/backend.js';
import { loadConfig } from '../../hub/platform/config.js';
import type { BuildProgress } from '../../hub/backend/types.js';
import { collect, docker, finalState, output, startTestHub, type TestHub } from '../helpers/hub.js';

const userDir = mkdtempSync(join(tmpdir(), 'da-user-profiles-'));
let t: TestHub;
/** A non-admin token granted the privileged profiles (the hub allows them too). */
let privileged: HubClient;
const smoke = new Map<string, Promise<JobEvent[]>>();

const SMOKE: Record<string, string> = {
  builder: [
    'node --version; npm --version; yarn --version; pnpm --version; git --version | sed -n 1p',
    'printf \'#include <stdio.h>\\nint main(void){puts("compiled");return 0;}\\n\' > a.c && gcc a.c -o a && ./a',
    'make --version | sed -n 1p',
  ].join('\n'),
  tester: [
    'node --version; mocha --version',
    'printf "<html><body style=\\"background:#0a0\\"><h1>docker-agent</h1></body></html>" > page.html',
    'chromium $CHROMIUM_FLAGS --user-data-dir=/tmp/chromium --window-size=320,200 --screenshot=/workspace/shot.png file:///workspace/page.html 2>/dev/null',
    'base64 -w0 shot.png',
  ].join('\n'),
  deployer: [
    'git --version; curl --version | sed -n 1p; ssh -V 2>&1; rsync --version | sed -n 1p; jq --version; ansible --version | sed -n 1p',
    "echo '{\"a\":[1,2,3]}' | jq -c '.a | add'",
  ].join('\n'),
  researcher: `python3 - <<'PY'
import numpy as np, pandas as pd, scipy.integrate as si, matplotlib.pyplot as plt
x = np.linalg.solve(np.array([[3, 1], [1, 2]]), np.array([9, 8]))
df = pd.DataFrame({"k": ["a", "b", "a"], "v": [1, 2, 3]})
area, _ = si.quad(lambda t: t * t, 0, 3)
plt.plot([0, 1], [0, 1]); plt.savefig("/tmp/plot.png")
print("solve", x.round(6).tolist())
print("groupby", df.groupby("k")["v"].sum().to_dict())
print("quad", round(area, 6))
print("png", open("/tmp/plot.png", "rb").read(4) == b"\\x89PNG")
PY`,
  'docker-host': [
    'start-docker',
    'mkdir -p /tmp/rootfs/bin && cp /bin/busybox /tmp/rootfs/bin/',
    'tar -C /tmp/rootfs -c . | docker import - nested:1 >/dev/null',
    'docker run --rm --network none nested:1 /bin/busybox echo nested container says hi',
  ].join('\n'),
};

beforeAll(async () => {
  t = await startTestHub({ DOCKER_AGENT_ALLOW_PRIVILEGED: 'true', DOCKER_AGENT_PROFILES_DIR: userDir });
  const { token } = await t.client.createToken({ name: 'privileged smoke', scopes: ['jobs', 'privileged'] });
  privileged = new HubClient({ url: t.hub.url, token });
  // Every built-in profile at once: their builds overlap, each smoke test then waits for its own.
  for (const [profile, run] of Object.entries(SMOKE)) {
    const client = profile === 'docker-host' ? privileged : t.client;
    const job = await client.createJob({ profile, run, timeout: 300 });
    smoke.set(profile, collect(client, job.id));
  }
}, 900_000);
afterAll(async () => {
  await t?.close();
  rmSync(userDir, { recursive: true, force: true });
  // The throwaway profiles' images (the built-in ones stay cached for the next run).
  const images = await docker.listImages({ filters: { reference: ['docker-agent/cache-*', 'docker-agent/cold-*'] } });
  for (const i of images)
    await docker
      .getImage(i.Id)
      .remove({ force: true })
      .catch(() => {});
});

async function smokeOutput(profile: string): Promise<string> {
  const events = await smoke.get(profile)!;
  const text = output(events);
  expect(finalState(events), `${profile}: ${output(events, 'stderr')}${JSON.stringify(events.filter((e) => e.type === 'error'))}`).toBe('succeeded');
  return text;
}

describe('built-in profiles pass their smoke jobs', () => {
  it('builder: Node.js, npm, yarn, pnpm, git and a C toolchain', async () => {
    const out = await smokeOutput('builder');
    const [nodeV, npmV, yarnV, pnpmV, gitV, compiled, makeV] = out.trim().split('\n');
    expect(nodeV).toMatch(/^v\d+\.\d+/);
    expect(npmV).toMatch(/^\d+\.\d+/);
    expect(yarnV).toMatch(/^1\.\d+/);
    expect(pnpmV).toMatch(/^9\.\d+/);
    expect(gitV).toMatch(/^git version 2\./);
    expect(compiled).toBe('compiled');
    expect(makeV).toMatch(/^GNU Make/);
  }, 900_000);

  it('tester: Node.js, mocha, and Chromium rendering a page to PNG', async () => {
    const out = (await smokeOutput('tester')).trim().split('\n');
    expect(out[0]).toMatch(/^v\d+/);
    expect(out[1]).toMatch(/^10\.\d+/);
    const png = Buffer.from(out.at(-1)!, 'base64');
    expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    // IHDR: the size asked for.
    expect([png.readUInt32BE(16), png.readUInt32BE(20)]).toEqual([320, 200]);
  }, 900_000);

  it('deployer: git, curl, ssh, rsync, jq and ansible', async () => {
    const out = await smokeOutput('deployer');
    for (const tool of [/git version/, /curl \d/, /OpenSSH_/, /rsync\s+version/, /jq-1\./, /ansible \[core/]) expect(out).toMatch(tool);
    expect(out.trim().split('\n').at(-1)).toBe('6');
  }, 900_000);

  it('researcher: numpy, pandas, scipy and matplotlib import and compute', async () => {
    const out = await smokeOutput('researcher');
    expect(out).toContain('solve [2.0, 3.0]');
    expect(out).toContain("groupby {'a': 4, 'b': 2}");
    expect(out).toContain('quad 9.0');
    expect(out).toContain('png True');
  }, 900_000);

  it('docker-host: runs a nested container from an image loaded into its own engine', async () => {
    expect((await smokeOutput('docker-host')).trim()).toBe('nested container says hi');
  }, 900_000);
});

describe('privileged profiles', () => {
  it('are refused to a principal without the privileged scope, naming the scope, and allowed with it', async () => {
    const { token } = await t.client.createToken({ name: 'jobs only', scopes: ['jobs'] });
    const plain = new HubClient({ url: t.hub.url, token });
    const err = await plain.createJob({ profile: 'docker-host', run: 'true' }).catch((e) => e);
    expect(err).toMatchObject({ status: 403, code: 'SCOPE_REQUIRED', details: { scope: 'privileged' } });
    expect(err.message).toMatch(/profile docker-host is privileged: using it needs the "privileged" scope, which token "jobs only" lacks/);
    const listed = async (c: HubClient) => (await (await c.raw('GET', '/v1/profiles')).json()).profiles.find((p: { name: string }) => p.name === 'docker-host');
    expect(await listed(plain)).toMatchObject({ privileged: true, usable: false });
    expect(await listed(privileged)).toMatchObject({ privileged: true, usable: true });
    // The smoke job above ran docker-host with the privileged token.
    expect(finalState(await smoke.get('docker-host')!)).toBe('succeeded');
  }, 900_000);

  it('are refused by a hub that does not allow them, even to a principal with the scope, with an error that says so', async () => {
    const strict = await startTestHub();
    try {
      const { token } = await strict.client.createToken({ name: 'would-be privileged', scopes: ['jobs', 'privileged'] });
      const err = await new HubClient({ url: strict.hub.url, token }).createJob({ profile: 'docker-host', run: 'true' }).catch((e) => e);
      expect(err).toMatchObject({ status: 403, code: 'PROFILE_NOT_ALLOWED' });
      expect(err.message).toMatch(/docker-host is privileged .* DOCKER_AGENT_ALLOW_PRIVILEGED=true/);
      const listed = await (await strict.client.raw('GET', '/v1/profiles')).json();
      expect(listed.profiles.find((p: { name: string }) => p.name === 'docker-host')).toMatchObject({ privileged: true, usable: false });
    } finally {
      await strict.close();
    }
  });
});

describe('profiles API', () => {
  it('lists, shows and validates profiles, and sees a new user profile without a restart', async () => {
    const name = `fresh-${randomUUID().slice(0, 8)}`;
    writeFileSync(join(userDir, `${name}.json`), JSON.stringify({ name, description: 'made by a test', timeout: 30 }));
    const list = await (await t.client.raw('GET', '/v1/profiles')).json();
    expect(list.profiles.map((p: { name: string }) => p.name)).toEqual(expect.arrayContaining(['builder', 'default', name]));
    const one = await (await t.client.raw('GET', `/v1/profiles/${name}`)).json();
    expect(one).toMatchObject({ name, source: 'user', profile: { timeout: 30 } });
    expect((await t.client.raw('GET', '/v1/profiles/nope')).status).toBe(404);

    const bad = await (
      await t.client.raw('POST', '/v1/profiles/validate', { body: JSON.stringify({ name: 'x', network: 'host', resources: { pids: 1 }, nope: 1 }) })
    ).json();
    expect(bad.valid).toBe(false);
    expect(bad.issues.map((i: { path: string }) => i.path).sort()).toEqual(['/network', '/nope', '/resources/pids']);
    const good = await (await t.client.raw('POST', '/v1/profiles/validate', { body: JSON.stringify({ name: 'x' }) })).json();
    expect(good).toEqual({ valid: true, issues: [] });

    const job = await t.client.createJob({ profile: name, run: 'echo user profile' });
    expect(job.timeout).toBe(30);
    expect(output(await collect(t.client, job.id))).toBe('user profile\n');
  });
});

describe('a custom base', () => {
  it("that the runtime's Node cannot run on is refused when its image is built, saying why", async () => {
    // The default base without libstdc++: what a base the official Node build cannot run on looks like to it.
    const base = `docker-agent-test/no-libstdcxx:${randomUUID().slice(0, 8)}`;
    const ctx = mkdtempSync(join(tmpdir(), 'da-base-'));
    writeFileSync(join(ctx, 'Dockerfile'), `FROM ${loadConfig([], {}).baseImage}\nRUN rm -f /usr/lib/x86_64-linux-gnu/libstdc++.so.6*\n`);
    const name = `cold-nolib-${randomUUID().slice(0, 8)}`;
    try {
      const stream = await docker.buildImage({ context: ctx, src: ['Dockerfile'] }, { t: base, rm: true });
      await new Promise((resolve, reject) => docker.modem.followProgress(stream, (err) => (err ? reject(err) : resolve(undefined))));
      writeFileSync(join(userDir, `${name}.json`), JSON.stringify({ name, base }));
      const job = await t.client.createJob({ profile: name, run: 'echo never' });
      const events = await collect(t.client, job.id);
      expect(finalState(events)).toBe('error');
      expect(JSON.stringify(events)).toContain(
        `the runtime's Node (an official glibc build) cannot run on base ${base}: it needs glibc 2.28 or newer and libstdc++`,
      );
    } finally {
      rmSync(ctx, { recursive: true, force: true });
      await docker
        .getImage(base)
        .remove({ force: true })
        .catch(() => {});
    }
  });
});

describe('image cache', () => {
  let backend: DockerBackend;
  beforeAll(async () => {
    backend = await DockerBackend.connect(loadConfig([], {}));
  });

  const prepare = async (profile: object) => {
    const progress: BuildProgress[] = [];
    const tag = await backend.prepare(profile as never, (p) => progress.push(p));
    return { tag, built: progress.some((p) => /^building image/.test(p.message)) };
  };

  it('builds a profile once, and after an edit rebuilds only that profile', async () => {
    const run = randomUUID();
    const a = { name: 'cache-a', environment: { RUN: run } };
    const b = { name: 'cache-b', environment: { RUN: run }, files: [{ path: '/etc/b', content: 'b' }] };
    const first = [await prepare(a), await prepare(b)];
    expect(first.map((r) => r.built)).toEqual([true, true]);
    const again = [await prepare(a), await prepare(b)];
    expect(again).toEqual(first.map((r) => ({ tag: r.tag, built: false })));

    const edited = await prepare({ ...a, environment: { RUN: run, EXTRA: '1' } });
    expect(edited.built).toBe(true);
    expect(edited.tag).not.toBe(first[0]!.tag);
    expect(await prepare(b)).toEqual({ tag: first[1]!.tag, built: false });
    // Only what a job can see counts: a new description is the same image.
    expect(await prepare({ ...b, description: 'now described' })).toEqual({ tag: first[1]!.tag, built: false });
  });

  it('builds a cold profile once for two jobs that want it at the same time, with progress in their events', async () => {
    const name = `cold-${randomUUID().slice(0, 8)}`;
    writeFileSync(join(userDir, `${name}.json`), JSON.stringify({ name, setup_tasks: [{ type: 'exec', command: 'sleep 1; echo warm > /etc/warmth' }] }));
    const jobs = await Promise.all([1, 2].map(() => t.client.createJob({ profile: name, run: 'cat /etc/warmth' })));
    const results = await Promise.all(jobs.map((j) => collect(t.client, j.id)));
    for (const events of results) {
      expect(finalState(events)).toBe('succeeded');
      expect(output(events)).toBe('warm\n');
    }
    const messages = results.map((events) => events.filter((e) => e.type === 'progress').map((e) => (e as { message: string }).message));
    expect(messages.filter((m) => m.some((x) => x.startsWith('building image')))).toHaveLength(1);
    expect(messages.filter((m) => m.some((x) => x.startsWith('waiting for the build')))).toHaveLength(1);
    const steps = results.flat().filter((e) => e.type === 'progress' && e.total) as Array<{ current: number; total: number }>;
    expect(steps.length).toBeGreaterThan(0);
    expect(steps.every((s) => s.current >= 1 && s.current <= s.total)).toBe(true);
    const images = await docker.listImages({ filters: { reference: [`docker-agent/${name}`] } });
    expect(images).toHaveLength(1);
  });

  it("ends a job whose image does not build as error with the failing step's output, and goes on serving", async () => {
    const name = `broken-${randomUUID().slice(0, 8)}`;
    writeFileSync(
      join(userDir, `${name}.json`),
      JSON.stringify({ name, setup_tasks: [{ type: 'exec', command: 'echo about to fail >&2; exit 7', description: 'a task that fails' }] }),
    );
    const job = await t.client.createJob({ profile: name, run: 'true' });
    const events = await collect(t.client, job.id);
    expect(finalState(events)).toBe('error');
    const error = events.find((e) => e.type === 'error') as { code: string; message: string };
    expect(error.code).toBe('IMAGE_BUILD_FAILED');
    expect(error.message).toMatch(/about to fail/);
    expect(error.message).toMatch(/code: 7|returned a non-zero code: 7/);
    expect((await t.client.getJob(job.id)).reason).toMatch(/building docker-agent\/broken-.* failed/);

    const next = await t.client.createJob({ run: 'echo still serving' });
    expect(output(await collect(t.client, next.id))).toBe('still serving\n');
  });
});

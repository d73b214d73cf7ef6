import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { dockerfileFor } from '../../hub/backend/docker/dockerfile.js';
import { contentTag } from '../../hub/backend/docker/images.js';
import { negotiate } from '../../hub/backend/docker/connect.js';
import { missingCapabilities } from '../../hub/backend/docker/backend.js';
import { parseMemory } from '../../hub/backend/docker/container-options.js';
import { loadConfig } from '../../hub/platform/config.js';
import { EventBus } from '../../hub/events/event-bus.js';
import { canTransition, isTerminal, TRANSITIONS } from '../../hub/jobs/lifecycle.js';
import { openDb, hubId } from '../../hub/store/db.js';
import { EventLog, toWire } from '../../hub/store/events.js';
import { JobStore } from '../../hub/store/jobs.js';
import { TokenStore } from '../../hub/store/tokens.js';
import { validateJobRequest, validateProfile } from '../../hub/platform/validation.js';

const NODE = { file: '/nonexistent/node', digest: 'd' };

describe('config', () => {
  it('takes flags over environment over defaults', () => {
    const c = loadConfig(['--port', '7000'], { DOCKER_AGENT_PORT: '8000', DOCKER_AGENT_HOST: '0.0.0.0', DOCKER_AGENT_DATA_DIR: '/tmp/x' });
    expect(c).toMatchObject({ port: 7000, host: '0.0.0.0', dataDir: '/tmp/x', maxJobs: 8, allowPrivileged: false });
    expect(loadConfig([], {}).port).toBe(9091);
    expect(loadConfig([], {}).host).toBe('127.0.0.1');
  });

  it('names each bad value with what was expected', () => {
    expect(() => loadConfig([], { DOCKER_AGENT_PORT: 'abc' })).toThrow(/DOCKER_AGENT_PORT="abc": expected a port number/);
    expect(() => loadConfig(['--port', '70000'], {})).toThrow(/--port="70000"/);
    expect(() => loadConfig([], { DOCKER_AGENT_TOKEN: 'short' })).toThrow(/DOCKER_AGENT_TOKEN="short": expected at least 16 characters/);
    expect(() => loadConfig([], { DOCKER_AGENT_ALLOW_PRIVILEGED: 'maybe' })).toThrow(/DOCKER_AGENT_ALLOW_PRIVILEGED/);
    expect(() => loadConfig(['--bogus', '1'], {})).toThrow(/bogus.*Flags: --host/);
  });
});

describe('job lifecycle', () => {
  it('lets an ended job never move again', () => {
    for (const s of ['succeeded', 'failed', 'timed_out', 'cancelled', 'error'] as const) {
      expect(isTerminal(s)).toBe(true);
      for (const to of Object.keys(TRANSITIONS)) expect(canTransition(s, to as never)).toBe(false);
    }
  });

  it('follows queued → preparing → starting → running → an end', () => {
    expect(canTransition('queued', 'preparing')).toBe(true);
    expect(canTransition('preparing', 'starting')).toBe(true);
    expect(canTransition('starting', 'running')).toBe(true);
    expect(canTransition('running', 'succeeded')).toBe(true);
    expect(canTransition('queued', 'running')).toBe(false);
    expect(canTransition('running', 'queued')).toBe(false);
  });
});

describe('validation', () => {
  it('accepts a run script or steps, and names bad paths', () => {
    expect(validateJobRequest({ run: 'echo hi' }).ok).toBe(true);
    expect(validateJobRequest({ steps: [{ run: 'a', name: 'n', env: { A: '1' }, timeout: 5 }], timeout: 10 }).ok).toBe(true);
    const r = validateJobRequest({ run: 'x', timeout: 'soon', extra: 1 });
    expect(r.ok).toBe(false);
    if (!r.ok)
      expect(r.issues).toEqual(
        expect.arrayContaining([
          { path: '/timeout', message: 'must be number' },
          { path: '/extra', message: 'is not a known field' },
        ]),
      );
  });

  it('checks the built-in profile shape', () => {
    expect(validateProfile({ name: 'x', network: 'none' }).ok).toBe(true);
    const r = validateProfile({ name: 'X!', network: 'host', resources: { memory: 'lots' } });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.issues.map((i) => i.path).sort()).toEqual(['/name', '/network', '/resources/memory']);
  });
});

describe('docker backend pieces', () => {
  it('negotiates the API version both sides speak', () => {
    expect(negotiate({ ApiVersion: '1.41', MinAPIVersion: '1.12' })).toBe('1.41');
    expect(negotiate({ ApiVersion: '1.51', MinAPIVersion: '1.24' })).toBe('1.47');
    expect(() => negotiate({ ApiVersion: '1.40' })).toThrow(/needs 1.41 or newer/);
    expect(() => negotiate({ ApiVersion: '1.60', MinAPIVersion: '1.50' })).toThrow(/needs API 1.50 or newer/);
  });

  it('knows which capabilities a host cannot grant', () => {
    expect(missingCapabilities(0x000001fffeffffffn)).toEqual(['SYS_RESOURCE']);
    expect(missingCapabilities(0x3fffffffffn)).toEqual([]);
    expect(missingCapabilities(0x3fffffffffn & ~(1n << 21n))).toEqual(['SYS_ADMIN']);
  });

  it('parses memory sizes', () => {
    expect(parseMemory('512m')).toBe(512 * 1024 ** 2);
    expect(parseMemory('1g')).toBe(1024 ** 3);
    expect(parseMemory('1.5G')).toBe(1.5 * 1024 ** 3);
    expect(() => parseMemory('lots')).toThrow(/expected bytes/);
  });

  it('tags an image by its content: same profile, same tag; any change, a new one', () => {
    const runtime = Buffer.from('runtime');
    const node = { file: '/nonexistent/node', digest: 'd1' };
    const tag = (p: object, base = 'sha256:a', rt = runtime, n = node) => contentTag(p as never, base, dockerfileFor(p as never, 'base', rt, n));
    const p = { name: 'x', packages: ['git'] };
    expect(tag(p)).toBe(tag({ ...p }));
    expect(tag(p)).toMatch(/^docker-agent\/x:[0-9a-f]{16}$/);
    expect(tag({ ...p, packages: ['git', 'jq'] })).not.toBe(tag(p));
    expect(tag(p, 'sha256:b')).not.toBe(tag(p));
    expect(tag(p, 'sha256:a', Buffer.from('runtime 2'))).not.toBe(tag(p));
    // The runtime's Node by its digest, never read for a tag.
    expect(tag(p, 'sha256:a', runtime, { file: '/elsewhere', digest: 'd1' })).toBe(tag(p));
    expect(tag(p, 'sha256:a', runtime, { ...node, digest: 'd2' })).not.toBe(tag(p));
  });

  it("puts the runtime's Node right on the base, checked there, the runtime last and the user as non-root", () => {
    const { dockerfile } = dockerfileFor({ name: 'x', npm: ['typescript'], environment: { A: 'b c' } }, 'base:1', Buffer.alloc(0), NODE);
    const lines = dockerfile.trim().split('\n');
    expect(lines[0]).toBe('FROM base:1');
    expect(lines[1]).toBe('COPY node /opt/docker-agent/node');
    expect(lines[2]).toMatch(/^RUN \/opt\/docker-agent\/node -e 0 \|\| .*cannot run on base base:1: it needs glibc 2.28 or newer/);
    expect(lines[3]).not.toContain('nodejs');
    expect(dockerfile).toMatch(/apt-get install .* npm &&/);
    expect(dockerfile).toContain('ENV A="b c"');
    expect(lines.at(-1)).toBe('CMD ["/opt/docker-agent/node", "/opt/docker-agent/runtime.cjs"]');
    expect(dockerfile).toContain('USER 1000:1000');
  });

  it("trusts the host's own CA certificates in images, and a new certificate means a new image", () => {
    const certs = new Map([['proxy.crt', Buffer.from('PEM')]]);
    const ctx = dockerfileFor({ name: 'x' }, 'base', Buffer.alloc(0), NODE, certs);
    expect(ctx.files.get('ca/proxy.crt')).toEqual(Buffer.from('PEM'));
    expect(ctx.dockerfile).toMatch(/COPY ca\/ \/usr\/local\/share\/ca-certificates\/\nRUN update-ca-certificates\nENV NODE_EXTRA_CA_CERTS=/);
    const plain = dockerfileFor({ name: 'x' }, 'base', Buffer.alloc(0), NODE);
    expect(plain.dockerfile).not.toContain('update-ca-certificates');
    expect(contentTag({ name: 'x' }, 'id', ctx)).not.toBe(contentTag({ name: 'x' }, 'id', plain));
  });
});

describe('store', () => {
  let dir: string;
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('numbers events without gaps, replays from any seq and survives reopening', () => {
    dir = mkdtempSync(join(tmpdir(), 'da-unit-'));
    const file = join(dir, 'hub.db');
    let db = openDb(file);
    const id = hubId(db);
    const jobs = new JobStore(db);
    jobs.create({ id: 'j1', owner: 'token:t', profile: 'default', spec: { steps: [], env: {}, timeout: 1, keep: false }, steps: [] });
    const bus = new EventBus(db, new EventLog(db));
    let wakes = 0;
    const stop = bus.follow('j1', () => wakes++);
    bus.publish('j1', [{ type: 'status', state: 'queued' }]);
    bus.publish('j1', [
      { type: 'stdout', step: 0, data: Buffer.from('hé') },
      { type: 'stderr', step: 0, data: Buffer.from([0xff]) },
    ]);
    stop();
    bus.publish('j1', [{ type: 'exit', code: 0 }]);
    expect(wakes).toBe(2);
    db.close();

    db = openDb(file);
    expect(hubId(db)).toBe(id);
    const log = new EventLog(db);
    const all = log.read('j1', 1, 100).map(toWire);
    expect(all.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    expect(all[1]).toMatchObject({ type: 'stdout', step: 0, data: 'hé' });
    expect(all[2]).toMatchObject({ type: 'stderr', data: '/w==', encoding: 'base64' });
    expect(log.read('j1', 3, 100).map((e) => e.seq)).toEqual([3, 4]);
    expect(new JobStore(db).get('j1')!.lastSeq).toBe(4);
    db.close();
  });

  it('stores tokens hashed', () => {
    dir = mkdtempSync(join(tmpdir(), 'da-unit-'));
    const db = openDb(join(dir, 'hub.db'));
    const tokens = new TokenStore(db);
    tokens.add({ name: 't', token: 'secret-token-abcdefgh', scopes: ['jobs'], source: 'api' });
    expect(tokens.check('secret-token-abcdefgh')).toMatchObject({ ok: true, token: { name: 't', scopes: ['jobs'] } });
    expect(tokens.check('secret-token-abcdefgX')).toEqual({ ok: false, why: 'unknown' });
    const raw = db.prepare('SELECT hash FROM tokens').all() as { hash: string }[];
    expect(raw.map((r) => r.hash).join()).not.toContain('secret');
    db.close();
  });
});

// deploy/ as an operator uses it: the hub's image built from deploy/Dockerfile and
// brought up by Debian's docker-compose from deploy/compose.yaml, a real job sent to
// that hub through the API, everything taken down again; and the systemd unit checked
// by systemd's own verifier.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { HubClient } from '../../client/index.js';
import { repoPath } from '../../hub/platform/paths.js';
import { collect, containersLeft, finalState, output, removeContainers, tempDataDir, TOKEN } from '../helpers/hub.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr: stderr || (err && typeof err.code !== 'number' ? err.message : '') });
    });
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

describe('deploy/compose.yaml with docker-compose', () => {
  // Unique per run: the project names the containers, network and image; the data folder is the hub's.
  const project = `da-deploy-${randomBytes(4).toString('hex')}`;
  const dataDir = tempDataDir();
  let env: NodeJS.ProcessEnv = {};
  let url = '';
  let hubId = '';
  const compose = (...args: string[]) => run('docker-compose', ['-f', repoPath('deploy', 'compose.yaml'), '-p', project, ...args], env);
  const logs = async () => (await compose('logs', '--no-color', 'hub')).stdout;

  beforeAll(async () => {
    for (const f of ['build/node24/node_modules/node/bin/node', 'build/node24/deps/node_modules/better-sqlite3/build/Release/better_sqlite3.node']) {
      if (!existsSync(repoPath(f))) throw new Error(`${f} is missing: the image copies it; run \`node scripts/setup.mjs --for=test\``);
    }
    const port = await freePort();
    env = { ...process.env, DOCKER_AGENT_TOKEN: TOKEN, DOCKER_AGENT_DATA_DIR: dataDir, DOCKER_AGENT_PORT: String(port) };
    url = `http://127.0.0.1:${port}`;
    const up = await compose('up', '-d', '--build');
    expect(up.code, up.stderr).toBe(0);
    // The hub is up once /health answers through the published port.
    const until = Date.now() + 60_000;
    for (;;) {
      const status = await fetch(`${url}/health`).then(
        (r) => r.status,
        () => 0,
      );
      if (status === 200) break;
      if (Date.now() > until) throw new Error(`no /health from the hub within 60 s (last: ${status}); its log:\n${await logs()}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    hubId = /hub (\S+) listening on/.exec(await logs())?.[1] ?? '';
  });

  afterAll(async () => {
    // Whatever happened above: the containers, network and built image of this project go, then what the hub made.
    const down = await compose('down', '-v', '--rmi', 'local', '--remove-orphans', '--timeout', '10');
    if (hubId) await removeContainers(hubId);
    rmSync(dataDir, { recursive: true, force: true });
    expect(down.code, down.stderr).toBe(0);
    const left = await run('docker', ['ps', '-aq', '--filter', `label=com.docker.compose.project=${project}`]);
    expect(left.stdout.trim()).toBe('');
  });

  it('runs the hub from the image: the official Node 24 on the base image, and the healthcheck passes', async () => {
    expect(hubId, await logs()).toMatch(/^[0-9a-f]+$/);
    const version = await compose('exec', '-T', 'hub', 'node', '--version');
    expect(version.stdout.trim()).toMatch(/^v24\./);
    const os = await compose('exec', '-T', 'hub', 'sh', '-c', '. /etc/os-release && echo $VERSION_CODENAME');
    expect(os.stdout.trim()).toBe('bookworm');
    // The healthcheck as compose read it, run now rather than at its 30 s interval.
    const config = parseYaml((await compose('config')).stdout) as { services: { hub: { healthcheck: { test: string[] } } } };
    const [kind, ...command] = config.services.hub.healthcheck.test;
    expect(kind).toBe('CMD');
    const check = await compose('exec', '-T', 'hub', ...command);
    expect(check.code, check.stderr).toBe(0);
  });

  it("says that it cannot isolate bridge jobs from inside a container, with the host's rules to add", async () => {
    // Its packet filter is the container's, not the host's (and the image has no iptables): the operator adds the rules.
    const health = (await (await fetch(`${url}/health`)).json()) as { status: string; network: { isolated: boolean; rules: string[]; problem: string } };
    expect(health.status).toBe('degraded');
    expect(health.network).toMatchObject({ isolated: false, problem: expect.stringContaining('packet filter') });
    expect(health.network.rules.join('\n')).toContain(`-i ${`da-${hubId}`.slice(0, 15)} `);
  });

  it('runs a real job sent through the HTTP API: the agent dials the hub through the shared data folder', async () => {
    const client = new HubClient({ url, token: TOKEN });
    const job = await client.createJob({ run: 'echo hi' });
    const events = await collect(client, job.id);
    expect(finalState(events), JSON.stringify(events.filter((e) => e.type === 'status' || e.type === 'error'))).toBe('succeeded');
    expect(output(events)).toBe('hi\n');
    // The hub in the container made the agent socket in the folder the host sees at the same path.
    expect(existsSync(join(dataDir, 'run'))).toBe(true);
    expect(await containersLeft(hubId)).toEqual([]);
  });
});

describe('deploy/docker-agent-hub.service', () => {
  it('passes systemd-analyze verify', async () => {
    // verify checks that ExecStart's programs exist (and the units it requires, docker.service,
    // which Debian's docker.io installs). It does not need the checkout at /opt/docker-agent, but
    // this copy points there at this checkout and at the Node that runs these tests, so what it
    // checks is this machine's; only those paths differ from the shipped file.
    const unit = readFileSync(repoPath('deploy', 'docker-agent-hub.service'), 'utf8');
    expect(unit).toContain('ExecStart=/usr/bin/node build/hub.mjs');
    const dir = mkdtempSync(join(tmpdir(), 'da-systemd-'));
    try {
      const file = join(dir, 'docker-agent-hub.service');
      writeFileSync(file, unit.replaceAll('/opt/docker-agent', repoPath()).replaceAll('/usr/bin/node', process.execPath));
      const r = await run('systemd-analyze', ['verify', '--man=no', file]);
      // Warnings (an unknown key, a bad value) go to stderr with exit code 0, so both are checked.
      expect(r).toEqual({ code: 0, stdout: '', stderr: '' });
      // verify does fail: a misspelt key and a missing program are reported.
      writeFileSync(file, unit.replace('Restart=', 'Restrat=').replaceAll('/usr/bin/node', '/nonexistent/node'));
      const bad = await run('systemd-analyze', ['verify', '--man=no', file]);
      expect(bad.code).not.toBe(0);
      expect(bad.stderr).toMatch(/Unknown key 'Restrat'/);
      expect(bad.stderr).toMatch(/\/nonexistent\/node is not executable/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

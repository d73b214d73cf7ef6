// A job's files reach its container through its runtime's own connection: the hub's
// endpoint (hub/api/runtime-files.ts) on a real Unix socket, the runtime's fetch and
// the system's tar (runtime/workspace.ts) into a real folder. The engine is scripted.
import { getRequestListener } from '@hono/node-server';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runtimeFilesRoutes } from '../../hub/api/runtime-files.js';
import { loadConfig } from '../../hub/platform/config.js';
import { ProfileRegistry } from '../../hub/profiles/registry.js';
import { repoPath } from '../../hub/platform/paths.js';
import { SandboxRegistry } from '../../hub/sandboxes/registry.js';
import { Sandbox, type SandboxHolder } from '../../hub/sandboxes/sandbox.js';
import { WorkspaceStore } from '../../hub/workspaces/uploads.js';
import { fetchWorkspace, workspaceRequest } from '../../runtime/workspace.js';
import { tarOf } from '../helpers/archives.js';
import { FakeBackend, FakeLink } from '../helpers/fake-backend.js';

let dir: string;
let servers: Server[];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'da-files-'));
  servers = [];
});
afterEach(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  rmSync(dir, { recursive: true, force: true });
});

function listen(server: Server): Promise<string> {
  servers.push(server);
  const socket = join(dir, `s${servers.length}.sock`);
  return new Promise((resolve) => server.listen(socket, () => resolve(`ws+unix://${socket}:/v1/agent`)));
}

/** A hub's registry and endpoint on a Unix socket, with one started sandbox whose runtime has not dialled in yet. */
async function hubWithSandbox() {
  const registry = new SandboxRegistry();
  const config = loadConfig([], { DOCKER_AGENT_DATA_DIR: dir, DOCKER_AGENT_TOKEN: 'unit-test-token-0123456789' });
  const backend = new FakeBackend();
  const holder: SandboxHolder = {
    label: 'job unit',
    connected: () => undefined,
    report: () => {},
    health: () => {},
    remember: () => {},
    lost: () => {},
    diskFull: () => {},
  };
  const sandbox = new Sandbox({ config, backend, index: registry, log: () => {} }, holder);
  await sandbox.start({ jobId: 'unit', hubId: 'unit', profile: new ProfileRegistry(repoPath('profiles')).get('default') }, 'fake/default');
  const token = backend.containers[0]!.spec.env.DOCKER_AGENT_AGENT_TOKEN!;
  const url = await listen(createServer(getRequestListener(runtimeFilesRoutes(registry).fetch)));
  const store = new WorkspaceStore(join(dir, 'workspaces'));
  const upload = await store.save(Readable.from(gzipSync(await tarOf([{ name: 'src/hello.txt', body: 'from the upload\n' }]))), 'application/gzip');
  return { registry, sandbox, token, url, archive: store.path(upload.id) };
}

describe("a job's workspace over its runtime's connection", () => {
  it('is fetched with the session token and unpacked into the folder, owned by the one who unpacks it', async () => {
    const { registry, sandbox, token, url, archive } = await hubWithSandbox();
    sandbox.offerWorkspace(archive);
    const link = new FakeLink();
    registry.attach(token, link);
    const session = (link.sent[0] as { session: string }).session;
    const into = mkdtempSync(join(dir, 'workspace-'));
    await fetchWorkspace(url, session, into);
    expect(readFileSync(join(into, 'src/hello.txt'), 'utf8')).toBe('from the upload\n');
    expect(statSync(join(into, 'src/hello.txt')).uid).toBe(process.getuid!());
  });

  it('is refused to the one-time token, to a replaced session and when the task brings none', async () => {
    const { registry, sandbox, token, url, archive } = await hubWithSandbox();
    const into = mkdtempSync(join(dir, 'workspace-'));
    sandbox.offerWorkspace(archive);
    await expect(fetchWorkspace(url, token, into)).rejects.toThrow(/HTTP 401/);
    const first = new FakeLink();
    registry.attach(token, first);
    const old = (first.sent[0] as { session: string }).session;
    const second = new FakeLink();
    registry.attach(old, second);
    await expect(fetchWorkspace(url, old, into)).rejects.toThrow(/HTTP 401/);
    const current = (second.sent[0] as { session: string }).session;
    sandbox.offerWorkspace(undefined);
    await expect(fetchWorkspace(url, current, into)).rejects.toThrow(/HTTP 401/);
    expect(() => registry.workspace('nonsense')).toThrow(/no workspace for this agent token/);
  });

  it('is an error, never a silent success, when it does not arrive whole', async () => {
    const whole = gzipSync(await tarOf([{ name: 'big.bin', body: 'x'.repeat(300_000) }]));
    const url = await listen(
      createServer((_req, res) => {
        res.writeHead(200, { 'content-length': String(whole.length) });
        res.write(whole.subarray(0, whole.length / 2), () => res.destroy());
      }),
    );
    await expect(fetchWorkspace(url, 'ses_x', mkdtempSync(join(dir, 'workspace-')))).rejects.toThrow(/tar exited|did not arrive whole/);
  });

  it('is asked of the same place the channel dials, on a socket or over TCP', () => {
    expect(workspaceRequest('ws+unix:///run/docker-agent/agent.sock:/v1/agent', 's')).toMatchObject({
      socketPath: '/run/docker-agent/agent.sock',
      path: '/v1/agent/workspace',
      secure: false,
    });
    expect(workspaceRequest('wss://hub.example:8443/base/v1/agent', 's')).toMatchObject({
      host: 'hub.example',
      port: '8443',
      path: '/base/v1/agent/workspace',
      secure: true,
    });
    expect(workspaceRequest('ws://10.0.0.2/v1/agent', 's')).toMatchObject({
      host: '10.0.0.2',
      path: '/v1/agent/workspace',
      secure: false,
      headers: { authorization: 'Bearer s' },
    });
  });
});

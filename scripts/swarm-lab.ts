// A Docker Swarm of several engines on one machine, for trying the swarm backend
// and for its tests: each node is its own dockerd (data root, exec root, socket,
// containerd namespace, bridge, hostname), all in the host's network namespace on
// their own loopback address (127.0.0.N: one Swarm gossip port each), with a
// registry from Debian's docker-registry on 127.0.0.1:5055 that every node pulls
// from. Node 1 is the manager, the rest are workers. As moby's own swarm tests run
// engines side by side; the traps this avoids are in docs/swarm.md.
//
//   npm run swarm-lab -- up [--nodes 3] [--json]     make it (or say it is up)
//   npm run swarm-lab -- down                        remove all of it
//   npm run swarm-lab -- status [--json]
//
// Needs root (it makes bridges and runs dockerd). Everything it makes lives under
// DOCKER_AGENT_SWARM_LAB_DIR (default /var/lib/docker-agent-swarm-lab).
import Docker from 'dockerode';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';

export const LAB_DIR = process.env.DOCKER_AGENT_SWARM_LAB_DIR ?? '/var/lib/docker-agent-swarm-lab';
// Not the package's own :5000, which its service may hold; any port of 127.0.0.0/8 is an insecure registry to every engine.
const REGISTRY_PORT = 5055;
export const REGISTRY = `127.0.0.1:${REGISTRY_PORT}`;
const START_TIMEOUT_MS = 60_000;

export interface LabNode {
  name: string;
  /** Its engine: unix:// socket path. */
  socket: string;
  address: string;
  pid: number;
}

export interface Lab {
  dir: string;
  nodes: LabNode[];
  registry: { address: string; pid: number };
  /** The environment a hub needs to use this lab as its Swarm. */
  env: Record<string, string>;
}

export class LabError extends Error {}

const say = (msg: string) => process.stderr.write(`[swarm-lab] ${msg}\n`);
const stateFile = (dir: string) => join(dir, 'lab.json');

function sh(cmd: string, args: string[], okCodes = [0]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error) throw new LabError(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  if (!okCodes.includes(r.status ?? -1)) throw new LabError(`${cmd} ${args.join(' ')} exited ${r.status}: ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = START_TIMEOUT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new LabError(`${what} within ${timeoutMs / 1000} s${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function portOpen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port }, () => (s.destroy(), resolve(true)));
    s.on('error', () => resolve(false));
  });
}

export function labEnv(dir: string, nodes: LabNode[]): Record<string, string> {
  return {
    DOCKER_AGENT_BACKEND: 'swarm',
    DOCKER_HOST: `unix://${nodes[0]!.socket}`,
    DOCKER_AGENT_REGISTRY: REGISTRY,
    // Each node's own engine, for the node helper: the Swarm template gives each task its node's hostname.
    DOCKER_AGENT_SWARM_NODE_SOCKET: join(dir, '{{.Node.Hostname}}', 'docker.sock'),
  };
}

export function readLab(dir = LAB_DIR): Lab | undefined {
  if (!existsSync(stateFile(dir))) return undefined;
  return JSON.parse(readFileSync(stateFile(dir), 'utf8')) as Lab;
}

/** Node `i`'s own bridge (1-based). */
const bridgeOf = (i: number) => `dasw${i}`;

/** Starts node `i` (1-based): its bridge, then its dockerd under its own hostname. */
function startNode(dir: string, i: number): LabNode {
  const name = `sw${i}`;
  const home = join(dir, name);
  mkdirSync(home, { recursive: true });
  const bridge = bridgeOf(i);
  // Its own bridge, made here: a dockerd beside another engine must never make (or, with --bridge=none, delete) docker0.
  if (spawnSync('ip', ['link', 'show', bridge]).status !== 0) {
    sh('ip', ['link', 'add', bridge, 'type', 'bridge']);
    sh('ip', ['addr', 'add', `10.240.${i}.1/24`, 'dev', bridge]);
  }
  sh('ip', ['link', 'set', bridge, 'up']);
  const socket = join(home, 'docker.sock');
  const args = [
    `--data-root=${join(home, 'data')}`,
    `--exec-root=${join(home, 'exec')}`,
    `--pidfile=${join(home, 'docker.pid')}`,
    `--host=unix://${socket}`,
    `--containerd-namespace=${name}`,
    `--containerd-plugins-namespace=${name}p`,
    `--bridge=${bridge}`,
    '--iptables=false',
    '--ip-forward=false',
    '--ip-masq=false',
    `--default-address-pool=base=10.24${i}.0.0/16,size=24`,
  ];
  const log = openSync(join(home, 'dockerd.log'), 'a');
  // Its own UTS namespace: each node has its own hostname, as Swarm templates ({{.Node.Hostname}}) need.
  const child = spawn('unshare', ['--uts', 'sh', '-c', `hostname ${name} && exec dockerd "$@"`, 'dockerd', ...args], {
    detached: true,
    stdio: ['ignore', log, log],
  });
  closeSync(log);
  child.unref();
  return { name, socket, address: `127.0.0.${i}`, pid: child.pid! };
}

function startRegistry(dir: string): { address: string; pid: number } {
  const home = join(dir, 'registry');
  mkdirSync(join(home, 'data'), { recursive: true });
  const config = join(home, 'config.yml');
  // Debian's shipped config points htpasswd at a folder; this one has no auth (loopback only) and keeps its data here.
  writeFileSync(
    config,
    [
      'version: 0.1',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${join(home, 'data')}`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: ${REGISTRY}`,
      '',
    ].join('\n'),
  );
  const log = openSync(join(home, 'registry.log'), 'a');
  const child = spawn('docker-registry', ['serve', config], { detached: true, stdio: ['ignore', log, log] });
  closeSync(log);
  child.unref();
  return { address: REGISTRY, pid: child.pid! };
}

/** Makes the lab (or returns the one that is up). */
export async function labUp({ nodes: count = 3, dir = LAB_DIR } = {}): Promise<Lab> {
  const existing = readLab(dir);
  if (existing && existing.nodes.every((n) => alive(n.pid)) && alive(existing.registry.pid)) return existing;
  if (existing) await labDown({ dir });
  if (process.getuid?.() !== 0) throw new LabError('the swarm lab makes bridges and runs dockerd: run it as root');
  for (const cmd of ['dockerd', 'docker-registry', 'unshare', 'ip']) {
    if (spawnSync('sh', ['-c', `command -v ${cmd}`]).status !== 0) {
      throw new LabError(`${cmd} is not installed: run \`node scripts/setup.mjs --for=swarm-lab\`, which installs it`);
    }
  }
  if (await portOpen('127.0.0.1', REGISTRY_PORT)) throw new LabError(`something already listens on ${REGISTRY}: stop it first`);
  mkdirSync(dir, { recursive: true });
  const t0 = Date.now();
  const nodes = Array.from({ length: count }, (_, i) => startNode(dir, i + 1));
  const registry = startRegistry(dir);
  // Written at once, so that `down` finds what was started even if the rest fails.
  const lab: Lab = { dir, nodes, registry, env: labEnv(dir, nodes) };
  writeFileSync(stateFile(dir), JSON.stringify(lab, null, 2));
  try {
    const engines = nodes.map((n) => new Docker({ socketPath: n.socket }));
    await Promise.all(engines.map((e, i) => until(`node ${nodes[i]!.name}'s engine did not answer`, async () => ((await e.ping()) ? true : undefined))));
    const manager = engines[0]!;
    await manager.swarmInit({
      ListenAddr: `${nodes[0]!.address}:2377`,
      AdvertiseAddr: nodes[0]!.address,
      // A lost node shows Down after ~3 s instead of ~11.
      Spec: { Dispatcher: { HeartbeatPeriod: 1_000_000_000 } },
    });
    const { JoinTokens } = (await manager.swarmInspect()) as { JoinTokens: { Worker: string } };
    for (const [i, e] of engines.entries()) {
      if (i === 0) continue;
      await e.swarmJoin({
        ListenAddr: `${nodes[i]!.address}:2377`,
        AdvertiseAddr: nodes[i]!.address,
        RemoteAddrs: [`${nodes[0]!.address}:2377`],
        JoinToken: JoinTokens.Worker,
      });
    }
    // No routing mesh can work in one network namespace ("error creating vxlan interface: file exists").
    await manager
      .getNetwork('ingress')
      .remove()
      .catch(() => {});
    await until('the nodes did not all become ready', async () => {
      const list = (await manager.listNodes()) as Array<{ Status: { State: string } }>;
      return list.length === count && list.every((n) => n.Status.State === 'ready') ? true : undefined;
    });
    await until(`the registry did not listen on ${REGISTRY}`, async () => ((await portOpen('127.0.0.1', REGISTRY_PORT)) ? true : undefined));
  } catch (err) {
    say(`starting failed, removing what was made: ${(err as Error).message}`);
    await labDown({ dir });
    throw err;
  }
  say(`up in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${nodes.map((n) => n.name).join(', ')} and a registry on ${REGISTRY}`);
  return lab;
}

async function stopProcess(pid: number, what: string): Promise<void> {
  if (!alive(pid)) return;
  process.kill(pid, 'SIGTERM');
  await until(`${what} did not stop`, async () => (alive(pid) ? undefined : true), 30_000).catch(() => process.kill(pid, 'SIGKILL'));
}

/** Removes everything the lab made: its services and containers, engines, registry, bridges and folder. */
export async function labDown({ dir = LAB_DIR } = {}): Promise<void> {
  const lab = readLab(dir);
  if (!lab) return;
  for (const n of lab.nodes) {
    if (!alive(n.pid)) continue;
    const e = new Docker({ socketPath: n.socket });
    try {
      if (n === lab.nodes[0]) for (const s of await e.listServices()) await e.getService(s.ID).remove();
      // Task containers stay on their node after their service goes.
      for (const c of await e.listContainers({ all: true })) await e.getContainer(c.Id).remove({ force: true, v: true });
      await e.swarmLeave({ force: true });
    } catch {
      // a node that does not answer is stopped all the same
    }
  }
  await Promise.all(lab.nodes.map((n) => stopProcess(n.pid, `dockerd of ${n.name}`)));
  await stopProcess(lab.registry.pid, 'the registry');
  for (const [i] of lab.nodes.entries()) spawnSync('ip', ['link', 'delete', bridgeOf(i + 1)]);
  for (const n of lab.nodes) {
    // What a killed dockerd left mounted under its data root must not be deleted through.
    const mounts = readFileSync('/proc/self/mounts', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[1] ?? '')
      .filter((m) => m.startsWith(join(dir, n.name) + '/'))
      .sort((a, b) => b.length - a.length);
    for (const m of mounts) spawnSync('umount', ['-l', m]);
  }
  rmSync(dir, { recursive: true, force: true });
}

async function main(argv: string[]): Promise<void> {
  const [command = 'status', ...rest] = argv;
  const json = rest.includes('--json');
  const nodesAt = rest.indexOf('--nodes');
  const nodes = nodesAt >= 0 ? Number(rest[nodesAt + 1]) : 3;
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > 9) throw new LabError(`--nodes ${rest[nodesAt + 1]}: expected 1 to 9`);
  const show = (lab: Lab | undefined) => {
    if (json) return process.stdout.write(`${JSON.stringify(lab ?? null, null, 2)}\n`);
    if (!lab) return process.stdout.write('no swarm lab is up\n');
    process.stdout.write(
      `nodes: ${lab.nodes.map((n) => `${n.name} (${n.address}, unix://${n.socket})`).join(', ')}\nregistry: ${lab.registry.address}\n\n` +
        `a hub on this Swarm:\n${Object.entries(lab.env)
          .map(([k, v]) => `  ${k}=${v}`)
          .join(' \\\n')} \\\n  npm start\n`,
    );
  };
  if (command === 'up') show(await labUp({ nodes }));
  else if (command === 'down') {
    await labDown();
    if (!json) process.stdout.write('the swarm lab is gone\n');
  } else if (command === 'status') show(readLab());
  else throw new LabError(`unknown command ${command}: expected up, down or status`);
}

if (process.argv[1] && /swarm-lab\.(ts|mjs)$/.test(process.argv[1])) {
  main(process.argv.slice(2)).catch((err: Error) => {
    say(err instanceof LabError ? `error: ${err.message}` : (err.stack ?? String(err)));
    process.exit(1);
  });
}

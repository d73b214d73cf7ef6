// Measures the hub against the raw engine doing the same work on the same machine
// in the same run, and prints medians, p99 and ratios (`--json` for the same as
// JSON, `--quick` for a smoke run). Speed is measured here, not asserted in tests.
//
//   npm run bench [-- --quick] [-- --json]        BENCH_SWARM=1 adds the swarm backend's rows
import Docker from 'dockerode';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HubClient, isFinalEvent, type JobRequest } from '../client/index.js';
import { DockerBackend } from '../hub/backend/docker/backend.js';
import { containerOptions } from '../hub/backend/docker/container-options.js';
import { loadConfig } from '../hub/platform/config.js';
import { ProfileRegistry } from '../hub/profiles/registry.js';
import { startHub, type RunningHub } from '../hub/server.js';
import { labDown, labUp, readLab } from '../scripts/swarm-lab.js';
import { breakdown, type Breakdown } from './breakdown.js';
import { rounds, summarize, throughput, time, type Summary } from './stats.js';

const quick = process.argv.includes('--quick');
const asJson = process.argv.includes('--json');
const TOKEN = 'bench-token-0123456789abcdef';
const N = {
  rounds: quick ? 2 : Number(process.env.BENCH_ROUNDS ?? 10),
  outputRounds: quick ? 1 : 3,
  parallel: quick ? 8 : 40,
  warm: quick ? 10 : 200,
  agents: quick ? 3 : Number(process.env.BENCH_AGENTS ?? 500),
  apiCalls: quick ? 20 : 100,
};

export interface Row {
  what: string;
  unit: 'ms' | 'jobs/s' | 'MiB' | 'MB';
  raw: Summary | null;
  hub: Summary;
  /** hub ÷ raw for times and sizes, raw ÷ hub for rates: below 1 is the hub ahead. */
  ratio: number | null;
  note?: string;
}

const progress = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);
const one = (x: number): Summary => ({ median: x, p99: x, n: 1 });

function row(what: string, unit: Row['unit'], raw: Summary | null, hub: Summary, note?: string): Row {
  const ratio = raw ? (unit === 'jobs/s' ? raw.median / hub.median : hub.median / raw.median) : null;
  // Each result as it comes, so a run that fails later still shows what it measured.
  progress(`${what}: raw ${raw ? raw.median.toFixed(1) : '–'}, hub ${hub.median.toFixed(1)} (p99 ${hub.p99.toFixed(0)}) ${unit}`);
  return { what, unit, raw, hub, ratio, ...(note ? { note } : {}) };
}

/** A raw `docker …` call, its output read; resolves with ms to the first stdout byte and to the end. */
function dockerCli(args: string[]): Promise<{ firstByte: number; end: number }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    let firstByte = 0;
    const p = spawn('docker', args, { stdio: ['ignore', 'pipe', 'inherit'] });
    p.stdout.on('data', () => (firstByte ||= performance.now() - t0));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve({ firstByte, end: performance.now() - t0 }) : reject(new Error(`docker ${args[0]} exited ${code}`))));
  });
}

/** A job through the hub; resolves with ms to its first output byte and to its end. */
async function hubJob(client: HubClient, req: JobRequest): Promise<{ firstByte: number; end: number }> {
  const t0 = performance.now();
  let firstByte = 0;
  const job = await client.createJob({ timeout: 600, ...req });
  for await (const e of client.events(job.id)) {
    if (e.type === 'stdout') firstByte ||= performance.now() - t0;
    if (isFinalEvent(e)) {
      if (e.type === 'status' && e.state !== 'succeeded') throw new Error(`bench job ${job.id} ended ${e.state}`);
      break;
    }
  }
  return { firstByte, end: performance.now() - t0 };
}

async function timesOf<T>(n: number, fn: () => Promise<T>, pick: (x: T) => number): Promise<Summary> {
  const xs: number[] = [];
  for (let i = 0; i < n; i++) xs.push(pick(await fn()));
  return summarize(xs);
}

/** What the bench started, ended whatever happens; the hubs' ids, so that a test can check nothing of theirs is left. */
const cleanups: Array<() => Promise<unknown>> = [];
const hubIds: string[] = [];

async function startBenchHub(env: Record<string, string> = {}): Promise<{ hub: RunningHub; client: HubClient; dataDir: string }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'da-bench-'));
  const config = loadConfig([], {
    DOCKER_AGENT_PORT: '0',
    DOCKER_AGENT_DATA_DIR: dataDir,
    DOCKER_AGENT_TOKEN: TOKEN,
    DOCKER_AGENT_MAX_JOBS: '16',
    DOCKER_AGENT_MAX_RUNNING_PER_PRINCIPAL: '16',
    DOCKER_AGENT_MAX_QUEUED_PER_PRINCIPAL: '1000',
    DOCKER_AGENT_MAX_AGENTS_PER_PRINCIPAL: '1000',
    ...env,
  });
  const hub = await startHub(config, () => {});
  hubIds.push(hub.hubId);
  cleanups.push(async () => {
    await hub.close().catch(() => {});
    const docker = new Docker();
    for (const c of await docker.listContainers({ all: true, filters: { label: [`docker-agent.hub=${hub.hubId}`] } }))
      await docker
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => {});
    const { Volumes } = await docker.listVolumes({ filters: { label: [`docker-agent.hub=${hub.hubId}`] } });
    for (const v of Volumes ?? [])
      await docker
        .getVolume(v.Name)
        .remove()
        .catch(() => {});
    for (const i of await docker.listImages({ filters: { label: [`docker-agent.hub=${hub.hubId}`] } }))
      await docker
        .getImage(i.Id)
        .remove({ force: true })
        .catch(() => {});
    const backend = await DockerBackend.connect({ ...config });
    await backend.removeJobNetwork(hub.hubId).catch(() => {});
    rmSync(dataDir, { recursive: true, force: true });
  });
  return { hub, client: new HubClient({ url: hub.url, token: TOKEN }), dataDir };
}

/** `docker run` flags for what the hub's container options limit and harden (not its labels, mounts or runtime env). */
function hardeningFlags(o: Docker.ContainerCreateOptions): string[] {
  const h = o.HostConfig!;
  return [
    ...(h.Init ? ['--init'] : []),
    `--user=${o.User}`,
    `--network=${h.NetworkMode}`,
    `--memory=${h.Memory}`,
    `--memory-swap=${h.MemorySwap}`,
    `--cpus=${h.NanoCpus! / 1e9}`,
    `--pids-limit=${h.PidsLimit}`,
    ...(h.Ulimits ?? []).map((u) => `--ulimit=${u.Name}=${u.Soft}:${u.Hard}`),
    ...((h.CapDrop ?? []) as string[]).map((c) => `--cap-drop=${c}`),
    ...((h.SecurityOpt ?? []) as string[]).map((x) => `--security-opt=${x}`),
    ...Object.entries(h.Sysctls ?? {}).map(([k, v]) => `--sysctl=${k}=${v}`),
    ...Object.entries(h.LogConfig?.Config ?? {}).map(([k, v]) => `--log-opt=${k}=${v}`),
  ];
}

async function memoryOf(docker: Docker, id: string): Promise<number> {
  const stats = (await docker.getContainer(id).stats({ stream: false })) as { memory_stats: { usage?: number; stats?: { cache?: number } } };
  // cgroup v1's usage counts the page cache; what a process holds is usage minus cache (as `docker stats` shows).
  return ((stats.memory_stats.usage ?? 0) - (stats.memory_stats.stats?.cache ?? 0)) / 1024 / 1024;
}

const breakdowns: { cold: Breakdown[]; warm: Breakdown[] } = { cold: [], warm: [] };

async function main(): Promise<Row[]> {
  const docker = new Docker();
  const rows: Row[] = [];
  const cold = await startBenchHub();
  const backend = await DockerBackend.connect({ ...loadConfig([], {}) });
  const profile = new ProfileRegistry(loadConfig([], {}).builtinProfilesDir).get('default');
  const image = await backend.prepare(profile);
  const raw = (...args: string[]) => dockerCli(['run', '--rm', '--network', 'none', '--user', '1000:1000', image, ...args]);
  // The same, with the limits and hardening the hub gives the profile's containers: what is the engine's cost of those, not the hub's.
  const hardening = hardeningFlags(containerOptions({ jobId: 'bench', hubId: 'bench', image, profile, env: {} }, { privileged: () => ({}) }));
  const rawHardened = (...args: string[]) => dockerCli(['run', '--rm', ...hardening, image, ...args]);
  progress(`image ${image}; warming up`);
  await hubJob(cold.client, { run: 'true' });
  await raw('true');

  breakdowns.cold = await breakdown(cold.client, 'echo x', quick ? 1 : 5);
  progress(`cold job \`true\`, ${N.rounds} rounds each`);
  rows.push(
    row(
      'cold job `true`, POST → end',
      'ms',
      await timesOf(
        N.rounds,
        () => raw('true'),
        (x) => x.end,
      ),
      await timesOf(
        N.rounds,
        () => hubJob(cold.client, { run: 'true' }),
        (x) => x.end,
      ),
      // What a user waits for: from sending the request to seeing the end.
      'raw twin: the whole of `docker run --rm` of the same image',
    ),
  );
  progress('cold job, POST → first output byte');
  rows.push(
    row(
      'cold job, POST → first byte',
      'ms',
      await timesOf(
        N.rounds,
        () => raw('echo', 'x'),
        (x) => x.firstByte,
      ),
      await timesOf(
        N.rounds,
        () => hubJob(cold.client, { run: 'echo x' }),
        (x) => x.firstByte,
      ),
    ),
  );
  progress('cold job `node -e 0`');
  rows.push(
    row(
      'cold job `node -e 0`',
      'ms',
      await timesOf(
        N.rounds,
        () => raw('node', '-e', '0'),
        (x) => x.end,
      ),
      await timesOf(
        N.rounds,
        () => hubJob(cold.client, { run: 'node -e 0' }),
        (x) => x.end,
      ),
    ),
  );

  for (const c of [4, 8]) {
    progress(`${N.parallel} echo jobs, ${c} at a time`);
    const rawRate = await throughput(N.parallel, c, () => raw('echo', 'x'));
    const hardenedRate = await throughput(N.parallel, c, () => rawHardened('echo', 'x'));
    const hubRate = await throughput(N.parallel, c, () => hubJob(cold.client, { run: 'echo x' }));
    rows.push(row(`${N.parallel} jobs, ${c} at a time`, 'jobs/s', one(rawRate), one(hubRate)));
    rows.push(
      row(`${N.parallel} jobs, ${c} at a time, hardened twin`, 'jobs/s', one(hardenedRate), one(hubRate), `raw twin: docker run ${hardening.join(' ')}`),
    );
  }

  if (process.env.BENCH_SWARM === '1') rows.push(...(await swarmRows(cold.client)));
  else progress('swarm rows left out: BENCH_SWARM=1 adds them, on a swarm lab (root; see docs/swarm.md)');

  const seq = quick ? 'seq 1 650000' : 'seq 1 6500000';
  const mb = quick ? '5 MB' : '52 MB';
  progress(`${mb} of output`);
  rows.push(
    row(
      `${mb} of output`,
      'ms',
      await rounds(N.outputRounds, () => raw('bash', '-c', seq)),
      await rounds(N.outputRounds, () => hubJob(cold.client, { run: seq })),
    ),
  );

  progress('snapshot of a job that wrote 20 MB: commit + export, layers only and full');
  {
    const snapJob = async () => {
      const job = await cold.client.createJob({ run: 'head -c 20000000 /dev/urandom > /workspace/blob', snapshot: true });
      for await (const e of cold.client.events(job.id)) if (e.type === 'status' && e.state === 'snapshotting') break;
      return job.id;
    };
    /** From the job's steps' end (snapshotting) to the last byte of the download: commit + export. */
    const exportOf = async (full: boolean) => {
      const id = await snapJob();
      const t0 = performance.now();
      for await (const e of cold.client.events(id)) if (isFinalEvent(e)) break;
      let bytes = 0;
      for await (const chunk of await cold.client.downloadSnapshot(id, { full })) bytes += (chunk as Buffer).length;
      return { ms: performance.now() - t0, mb: bytes / 1e6 };
    };
    const layers = await exportOf(false);
    const full = await exportOf(true);
    const rawC = `da-bench-snap-${Date.now()}`;
    cleanups.push(async () => {
      await dockerCli(['rm', '-f', rawC]).catch(() => {});
      await dockerCli(['rmi', `${rawC}:snap`]).catch(() => {});
    });
    await dockerCli([
      'run',
      '--name',
      rawC,
      '--network',
      'none',
      '--user',
      '1000:1000',
      image,
      'bash',
      '-c',
      'head -c 20000000 /dev/urandom > /workspace/blob',
    ]);
    const rawMs = await time(async () => {
      await dockerCli(['commit', rawC, `${rawC}:snap`]);
      await dockerCli(['save', `${rawC}:snap`]);
    });
    rows.push(row('20 MB change: commit + export, layers only', 'ms', one(rawMs), one(layers.ms), 'raw twin: docker commit + docker save'));
    rows.push(row('20 MB change: commit + export, full save', 'ms', one(rawMs), one(full.ms), 'raw twin: docker commit + docker save'));
    rows.push(row('20 MB change: artifact, layers only', 'MB', one(20), one(layers.mb), 'raw: the change itself'));
    rows.push(row('20 MB change: artifact, full save', 'MB', one(20), one(full.mb), 'raw: the change itself'));
  }

  progress(`idle memory and API latency with ${N.agents} idle agents`);
  {
    const names = Array.from({ length: N.agents }, (_, i) => `bench-idle-${i}`);
    // In batches: what is measured is the agents idling, not as many Node start-ups at once on 2 cores
    // (those starve each other past the 60 s a runtime has to dial in).
    const batch = 25;
    for (let i = 0; i < names.length; i += batch) {
      for (const name of names.slice(i, i + batch)) await cold.client.createAgent({ name });
      for (;;) {
        const agents = await cold.client.listAgents();
        if (agents.filter((a) => a.state === 'running').length >= Math.min(names.length, i + batch)) break;
        const failed = agents.find((a) => a.state === 'error');
        if (failed) throw new Error(`idle agent ${failed.name} failed to start: ${(failed as { reason?: string }).reason ?? 'no reason given'}`);
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    const containers = await docker.listContainers({ filters: { label: [`docker-agent.hub=${cold.hub.hubId}`, 'docker-agent.agent'] } });
    const mem = summarize(await Promise.all(containers.map((c) => memoryOf(docker, c.Id))));
    const rawIdle = `da-bench-idle-${Date.now()}`;
    cleanups.push(() => dockerCli(['rm', '-f', rawIdle]).catch(() => {}));
    await dockerCli([
      'run',
      '-d',
      '--name',
      rawIdle,
      '--network',
      'none',
      '--user',
      '1000:1000',
      image,
      '/opt/docker-agent/node',
      '-e',
      'setInterval(() => {}, 1e9)',
    ]);
    const rawMem = await memoryOf(docker, (await docker.getContainer(rawIdle).inspect()).Id);
    rows.push(row('memory per idle agent (container)', 'MiB', one(rawMem), mem, 'raw twin: an idle process of the same Node in a container'));
    // One after another, as a user's calls come: the latency of each, not of a burst.
    const api = await rounds(N.apiCalls, () => cold.client.listJobs({ limit: 20 }));
    rows.push(row(`API GET /v1/jobs with ${N.agents} idle agents`, 'ms', null, api));
    for (const name of names) await cold.client.destroyAgent(name);
  }

  progress(`warm job, POST → first byte, ${N.warm} jobs (pool of 2)`);
  {
    const warm = await startBenchHub({ DOCKER_AGENT_POOL_MIN_IDLE: '2' });
    // Each job once the pool is full again, as its raw twin execs into a container with no other booting beside it:
    // a job sent while the last one's replacement boots shares the 2 cores with that boot (p50 ~18 ms instead of ~12).
    const idle = async () => {
      for (;;) {
        const h = (await warm.client.health()) as unknown as { pool: Record<string, { idle: number; starting: number; minIdle: number }> };
        const p = h.pool.default;
        if (p && p.idle >= p.minIdle && p.starting === 0) return;
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    breakdowns.warm = await breakdown(warm.client, 'echo x', quick ? 3 : 25, idle);
    const times: number[] = [];
    for (let i = 0; i < N.warm; i++) {
      await idle();
      times.push((await hubJob(warm.client, { run: 'echo x' })).firstByte);
    }
    const execC = `da-bench-exec-${Date.now()}`;
    cleanups.push(() => dockerCli(['rm', '-f', execC]).catch(() => {}));
    await dockerCli(['run', '-d', '--name', execC, '--network', 'none', '--user', '1000:1000', image, 'sleep', '600']);
    const rawExec = await timesOf(
      N.rounds,
      () => dockerCli(['exec', execC, 'echo', 'x']),
      (x) => x.firstByte,
    );
    rows.push(row('warm job, POST → first byte', 'ms', rawExec, summarize(times), 'raw twin: docker exec into a running container'));
  }
  return rows;
}

/**
 * A hub on the swarm backend beside the single-host hub `single`, in the same run: on
 * the lab that is up, or on one made here (and removed at the end).
 */
async function swarmRows(single: HubClient): Promise<Row[]> {
  const already = readLab();
  const lab = await labUp();
  if (!already) cleanups.push(() => labDown());
  const swarm = await startBenchHub(lab.env);
  progress('swarm: warming up (each node pulls the image once)');
  await throughput(2 * lab.nodes.length, 2 * lab.nodes.length, () => hubJob(swarm.client, { run: 'true' }));
  const note = 'beside: the single-host hub, in the same run';
  const rows = [
    row(
      'swarm: cold job `true`, POST → end',
      'ms',
      await timesOf(
        N.rounds,
        () => hubJob(single, { run: 'true' }),
        (x) => x.end,
      ),
      await timesOf(
        N.rounds,
        () => hubJob(swarm.client, { run: 'true' }),
        (x) => x.end,
      ),
      note,
    ),
  ];
  const singleRate = await throughput(N.parallel, 4, () => hubJob(single, { run: 'echo x' }));
  const swarmRate = await throughput(N.parallel, 4, () => hubJob(swarm.client, { run: 'echo x' }));
  rows.push(row(`swarm: ${N.parallel} jobs, 4 at a time`, 'jobs/s', one(singleRate), one(swarmRate), note));
  return rows;
}

function table(rows: Row[]): string {
  const fmt = (s: Summary | null, unit: string) =>
    s ? `${s.median.toFixed(unit === 'jobs/s' || unit === 'MiB' ? 1 : 0)}${s.n > 1 ? ` (p99 ${s.p99.toFixed(0)})` : ''}` : '–';
  const lines = [`${'what'.padEnd(44)} ${'unit'.padEnd(7)} ${'raw engine'.padStart(18)} ${'hub'.padStart(18)} ${'ratio'.padStart(7)}`];
  for (const r of rows) {
    lines.push(
      `${r.what.padEnd(44)} ${r.unit.padEnd(7)} ${fmt(r.raw, r.unit).padStart(18)} ${fmt(r.hub, r.unit).padStart(18)} ${(r.ratio === null ? '–' : `${r.ratio.toFixed(2)}x`).padStart(7)}`,
    );
  }
  return lines.join('\n');
}

let rows: Row[];
try {
  rows = await main();
} finally {
  for (const clean of cleanups.reverse()) await clean();
}
if (asJson) process.stdout.write(`${JSON.stringify({ quick, rounds: N, rows, breakdowns, hubs: hubIds }, null, 2)}\n`);
else {
  process.stdout.write(
    `\n${table(rows)}\n\nratio: hub ÷ raw for times and sizes, raw ÷ hub for rates (below 1: the hub is ahead); medians, p99 in brackets.\n`,
  );
  const show = (what: string, bs: Breakdown[]) =>
    `\nwhere a ${what} job's time goes (\`echo x\`, medians; ms since the phase before, and since the POST was sent):\n${bs
      .map((b) => `  ${b.phase.padEnd(24)} ${String(b.ms).padStart(5)} ${String(b.at).padStart(6)}`)
      .join('\n')}\n`;
  process.stdout.write(show('cold', breakdowns.cold) + show('warm (pooled)', breakdowns.warm));
}

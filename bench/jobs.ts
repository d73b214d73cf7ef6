// Measures the hub against the raw `docker run` of the same image on the same
// machine in the same run, and prints ratios. Speed is measured here, not
// asserted in tests.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HubClient, isFinalEvent } from '../client/index.js';
import { DockerBackend } from '../hub/backend/docker/backend.js';
import { loadConfig } from '../hub/config.js';
import { ProfileRegistry } from '../hub/profiles/registry.js';
import { startHub } from '../hub/server.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 10);
const TOKEN = 'bench-token-0123456789abcdef';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function time(fn: () => Promise<unknown> | unknown): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

async function rounds(fn: () => Promise<unknown> | unknown, n = ROUNDS): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) times.push(await time(fn));
  return median(times);
}

async function main() {
  const dataDir = mkdtempSync(join(tmpdir(), 'da-bench-'));
  const config = loadConfig([], { DOCKER_AGENT_PORT: '0', DOCKER_AGENT_DATA_DIR: dataDir, DOCKER_AGENT_TOKEN: TOKEN });
  const hub = await startHub(config, () => {});
  const client = new HubClient({ url: hub.url, token: TOKEN });
  const runJob = async (run: string) => {
    const job = await client.createJob({ run, timeout: 600 });
    for await (const e of client.events(job.id)) if (isFinalEvent(e)) return e;
  };
  // The image the hub runs, so both sides start the same thing.
  const backend = await DockerBackend.connect(config);
  const tag = await backend.prepare(new ProfileRegistry(config.builtinProfilesDir).get(config.defaultProfile));
  await runJob('true');
  // Async, and reading all output, as a client of `docker run` would (the hub shares this process).
  const docker = (...args: string[]) =>
    new Promise<void>((resolve, reject) => {
      const p = spawn('docker', ['run', '--rm', '--network', 'none', '--user', '1000:1000', tag, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
      p.stdout.resume();
      p.on('error', reject);
      p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`docker run exited ${code}`))));
    });

  const results: Array<[string, number, number]> = [];
  results.push(['job `true` (start → end, ms)', await rounds(() => docker('true')), await rounds(() => runJob('true'))]);
  results.push([
    'job `node -e 0` (ms)',
    await rounds(() => docker('node', '-e', '0')),
    await rounds(() => runJob('node -e 0')),
  ]);
  const seq = 'seq 1 6500000'; // 51.9 MB of output
  results.push([
    '52 MB of output (ms)',
    await rounds(() => docker('bash', '-c', seq), 3),
    await rounds(() => runJob(seq), 3),
  ]);

  console.log(`\nmedian of ${ROUNDS} rounds (3 for output), ${tag}`);
  console.log(`${'what'.padEnd(34)} ${'docker run'.padStart(11)} ${'hub'.padStart(9)} ${'ratio'.padStart(7)}`);
  for (const [what, raw, viaHub] of results) {
    console.log(`${what.padEnd(34)} ${raw.toFixed(0).padStart(11)} ${viaHub.toFixed(0).padStart(9)} ${(viaHub / raw).toFixed(2).padStart(6)}x`);
  }
  await hub.close();
  await backend.removeJobNetwork(hub.hubId);
  rmSync(dataDir, { recursive: true, force: true });
}

await main();

// A real hub for a test file: its own data folder, port and token, the real engine.
import Docker from 'dockerode';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { HubApiError, HubClient, isFinalEvent, type JobEvent } from '../../client/index.js';
import { loadConfig } from '../../hub/platform/config.js';
import { startHub, type HubOptions, type RunningHub } from '../../hub/server.js';
import { uninstallHub } from '../../hub/backend/docker/uninstall.js';

export const TOKEN = 'test-token-0123456789abcdef';

export interface TestHub {
  hub: RunningHub;
  client: HubClient;
  dataDir: string;
  close(): Promise<void>;
}

export function tempDataDir(): string {
  // Short: the agent socket's path must fit in 108 bytes.
  return mkdtempSync(join(tmpdir(), 'da-'));
}

export function testConfig(dataDir: string, env: Record<string, string> = {}) {
  return loadConfig([], { DOCKER_AGENT_PORT: '0', DOCKER_AGENT_DATA_DIR: dataDir, DOCKER_AGENT_TOKEN: TOKEN, ...env });
}

export async function startTestHub(
  env: Record<string, string> = {},
  opts: HubOptions & { log?: (line: string) => void; dataDir?: string } = {},
): Promise<TestHub> {
  const dataDir = opts.dataDir ?? tempDataDir();
  const hub = await startHub(testConfig(dataDir, env), opts.log ?? (() => {}), opts);
  const client = new HubClient({ url: hub.url, token: TOKEN });
  return {
    hub,
    client,
    dataDir,
    async close() {
      await hub.close();
      await removeContainers(hub.hubId);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** The API error a call that must be refused ends with (failing the test when it succeeds or fails otherwise). */
export async function refusal(p: Promise<unknown>): Promise<HubApiError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(HubApiError);
  return err as HubApiError;
}

/** Every event of a job until its final one. */
export async function collect(client: HubClient, jobId: string, from = 1): Promise<JobEvent[]> {
  const events: JobEvent[] = [];
  for await (const e of client.events(jobId, { from })) events.push(e);
  return events;
}

/** A step's stdout (or stderr) as the client got it, bytes joined in order. */
export function output(events: JobEvent[], stream: 'stdout' | 'stderr' = 'stdout'): string {
  return events
    .filter((e) => e.type === stream)
    .map((e) => (e.type === stream && e.encoding === 'base64' ? Buffer.from(e.data, 'base64').toString() : (e as { data: string }).data))
    .join('');
}

export function finalState(events: JobEvent[]): string | undefined {
  const last = events.at(-1);
  return last && isFinalEvent(last) && last.type === 'status' ? last.state : undefined;
}

export const docker = new Docker();

export async function containersOf(hubId: string) {
  return docker.listContainers({ all: true, filters: { label: [`docker-agent.hub=${hubId}`] } });
}

/**
 * This hub's containers that `which` picks, once none is left, or those still
 * there at the deadline: an ended job's container is removed after its end is
 * reported, so a test waits for it to go rather than expecting it gone at once.
 */
export async function containersLeft(hubId: string, which: (c: Docker.ContainerInfo) => boolean = () => true, deadlineMs = 10_000) {
  const until = Date.now() + deadlineMs;
  for (;;) {
    const left = (await containersOf(hubId)).filter(which);
    if (left.length === 0 || Date.now() >= until) return left;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** What a test hub leaves on the engine and the host: its containers, its agents' volumes, its snapshots, its job network and that network's packet filter rules. */
export async function removeContainers(hubId: string) {
  const { problems } = await uninstallHub(hubId, { images: true, volumes: true });
  // A container the hub is removing at this moment (409) is gone a moment later.
  expect(problems.filter((p) => !/409|in progress/.test(p))).toEqual([]);
}

/** Resolves once a named agent has left `starting`, with its state. */
export async function settledAgent(client: HubClient, name: string): Promise<string> {
  const stop = new AbortController();
  try {
    if ((await client.getAgent(name)).state !== 'starting') return (await client.getAgent(name)).state;
    for await (const e of client.agentLogs(name, { tail: 0, follow: true, signal: stop.signal })) {
      if (e.type === 'agent' && e.state !== 'starting') break;
    }
  } finally {
    stop.abort();
  }
  return (await client.getAgent(name)).state;
}

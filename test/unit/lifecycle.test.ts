// The job and agent lifecycles without Docker: a scripted backend (test/helpers/
// fake-backend.ts) and the test playing the runtime on the runtime channel, over the
// real SQLite store. What only the engine can show stays in the integration tests.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodeOutputFrame } from '../../schemas/agent-frame.js';
import type { JobState } from '../../schemas/types.gen.js';
import { AgentService } from '../../hub/agents/service.js';
import type { ContainerRef } from '../../hub/backend/types.js';
import { loadConfig } from '../../hub/platform/config.js';
import { EventBus } from '../../hub/events/event-bus.js';
import { jobSpec } from '../../hub/jobs/job-spec.js';
import { recoveryPlan } from '../../hub/jobs/recovery.js';
import { JobService } from '../../hub/jobs/service.js';
import type { RuntimeSession } from '../../hub/sandboxes/runtime-link.js';
import { SandboxRegistry } from '../../hub/sandboxes/registry.js';
import { reapOrphans } from '../../hub/sandboxes/reaper.js';
import { repoPath } from '../../hub/platform/paths.js';
import type { Principal } from '../../hub/platform/principal.js';
import { ProfileRegistry } from '../../hub/profiles/registry.js';
import { Snapshots } from '../../hub/snapshots/snapshots.js';
import { AgentStore } from '../../hub/store/agents.js';
import { openDb, type Db } from '../../hub/store/db.js';
import { EventLog, agentLogKey, toWire } from '../../hub/store/events.js';
import { JobStore } from '../../hub/store/jobs.js';
import { StorageBudget } from '../../hub/store/storage-budget.js';
import { SnapshotStore } from '../../hub/store/snapshots.js';
import { WorkspaceOwners } from '../../hub/store/workspace-owners.js';
import { WorkspaceStore } from '../../hub/workspaces/uploads.js';
import { decodeOutputFrame } from '../../schemas/agent-frame.js';
import { FakeBackend, FakeLink } from '../helpers/fake-backend.js';
import { Hono } from 'hono';
import { answerErrors, type HubEnv } from '../../hub/api/env.js';
import { jobsRoutes } from '../../hub/api/jobs.js';
import { DiskWatch, type Watched } from '../../hub/sandboxes/disk-watch.js';

const admin: Principal = { id: 'token:admin', kind: 'token', label: 'admin', scopes: new Set(['admin']) };

interface Hub {
  db: Db;
  jobs: JobService;
  agents: AgentService;
  store: JobStore;
  events: EventLog;
  bus: EventBus;
  backend: FakeBackend;
  /** Where runtimes attach, for every kind of sandbox. */
  registry: SandboxRegistry;
  /** Removes (unless dryRun) the containers nothing holds, as maintenance does. */
  reap(dryRun: boolean): Promise<string[]>;
  /** What a starting hub does: jobs and agents take up their containers, the rest go. */
  recover(): Promise<void>;
  close(): void;
}

let dir: string;
let hubs: Hub[] = [];

/** A hub's services over the data folder `dir` and a backend (shared across a "restart"). */
function hub(backend = new FakeBackend(), env: Record<string, string> = {}): Hub {
  const config = loadConfig([], {
    DOCKER_AGENT_DATA_DIR: dir,
    DOCKER_AGENT_AGENT_CONNECT_TIMEOUT_MS: '300',
    DOCKER_AGENT_TOKEN: 'unit-test-token-0123456789',
    ...env,
  });
  const db = openDb(join(dir, 'hub.db'));
  const store = new JobStore(db);
  const events = new EventLog(db);
  const bus = new EventBus(db, events);
  const links = { http: 'http://hub', ws: 'ws://hub' };
  const budget = new StorageBudget(db, config.maxStoredBytesPerPrincipal);
  const snapshots = new Snapshots(new SnapshotStore(db), backend, links, budget);
  const profiles = new ProfileRegistry(repoPath('profiles'));
  const registry = new SandboxRegistry();
  registry.open();
  const sandboxes = { config, backend, index: registry, log: () => {} };
  const jobs = new JobService({
    config,
    hubId: 'unit',
    store,
    bus,
    backend,
    profiles,
    budget,
    snapshots,
    links,
    log: () => {},
    sandboxes,
    workspaces: new WorkspaceStore(join(dir, 'workspaces')),
    workspaceOwners: new WorkspaceOwners(db),
    graces: { deadlineMs: 300, cancelMs: 300 },
  });
  const agents = new AgentService({
    config,
    hubId: 'unit',
    agents: new AgentStore(db),
    store,
    bus,
    backend,
    profiles,
    jobs,
    snapshots,
    sandboxes,
    log: () => {},
  });
  const reap = (dryRun: boolean, containers?: Awaited<ReturnType<FakeBackend['list']>>) =>
    reapOrphans({ backend, hubId: 'unit', log: () => {}, holds: (c) => jobs.holds(c) || agents.holds(c) }, dryRun, containers);
  const h: Hub = {
    db,
    jobs,
    agents,
    store,
    events,
    bus,
    backend,
    registry,
    reap: (dryRun) => reap(dryRun),
    recover: async () => {
      const containers = await backend.list();
      await jobs.recover(containers);
      await agents.recover(containers);
      await reap(false, containers);
    },
    close: () => {
      registry.close();
      jobs.stop();
      agents.close();
      db.close();
    },
  };
  hubs.push(h);
  return h;
}

/** Resolves once `test` holds, looked at again each time an event of log `key` is stored. */
async function when<T>(h: Hub, key: string, test: () => T | undefined): Promise<T> {
  for (;;) {
    const value = test();
    if (value !== undefined) return value;
    await new Promise<void>((resolve) => {
      const unfollow = h.bus.follow(key, () => {
        unfollow();
        resolve();
      });
    });
  }
}

/** Resolves with the job's state once it passes `test`. */
function until(h: Hub, id: string, test: (s: JobState) => boolean): Promise<JobState> {
  return when(h, id, () => {
    const state = h.store.get(id)!.state;
    return test(state) ? state : undefined;
  });
}

const ended = (s: JobState) => ['succeeded', 'failed', 'timed_out', 'cancelled', 'error'].includes(s);
const stdout = (h: Hub, id: string) =>
  h.events
    .read(id, 1, 1000)
    .map(toWire)
    .flatMap((e) => (e.type === 'stdout' ? [e.data] : []))
    .join('');

/** Dials in as the job's runtime and waits for the running state. */
async function dialIn(h: Hub, jobId: string): Promise<{ link: FakeLink; session: RuntimeSession }> {
  await until(h, jobId, (s) => s === 'starting');
  const link = new FakeLink();
  const session = h.registry.attach(h.backend.tokenOf(jobId), link);
  return { link, session };
}

const out = (n: number, data: string) => decodeOutputFrame(encodeOutputFrame({ stream: 'stdout', n, step: 0, data: Buffer.from(data) }));

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'da-life-'));
});
afterEach(() => {
  for (const h of hubs) h.close();
  hubs = [];
  rmSync(dir, { recursive: true, force: true });
});

describe('a request becomes a job spec', () => {
  it("from run, steps or a JSON task, with the profile's time limit unless it gives one", () => {
    expect(jobSpec({ run: 'make' }, { profileTimeout: 60 })).toMatchObject({ steps: [{ name: 'run', run: 'make', env: {} }], timeout: 60, keep: false });
    expect(jobSpec({ task: { type: 'exec', command: 'pwd', stdin: 'x' }, timeout: 5 }, {}).steps).toEqual([{ name: 'exec', run: 'pwd', env: {}, stdin: 'x' }]);
    expect(jobSpec({ steps: [{ run: 'a' }, { name: 'b', run: 'b', timeout: 3 }] }, {}).steps.map((s) => s.name)).toEqual(['step 1', 'b']);
    expect(jobSpec({ run: 'x', env: { A: '2' } }, { agentEnv: { A: '1', B: '1' } }).env).toEqual({ A: '2', B: '1' });
    expect(() => jobSpec({ run: 'x', profile: 'builder' }, { agentEnv: {} })).toThrow(/do not apply/);
    // What bash -c could not be started with is refused, by its path: a task's command, an agent's env merged in.
    expect(() => jobSpec({ task: { type: 'exec', command: 'é'.repeat(70_000) } }, {})).toThrow(/\/task\/command: is 140000 bytes/);
    expect(() => jobSpec({ run: 'true' }, { agentEnv: { HUGE: 'v'.repeat(140_000) } })).toThrow(/\/env\/HUGE: is 140005 bytes/);
    const many = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`V${i}`, 'v'.repeat(100_000)]));
    expect(() => jobSpec({ run: 'true', env: many }, {})).toThrow(/\/run: with its env is \d+ bytes; a step may start with at most 1048576/);
  });
});

describe('recovery after a restart', () => {
  it('lets queued jobs wait, queues again what was preparing, re-attaches running containers and fails the rest with why', () => {
    const job = (id: string, state: JobState, agent?: string) => ({ id, state, ...(agent ? { agent } : {}) }) as never;
    const plan = recoveryPlan(
      [job('q', 'queued'), job('p', 'preparing'), job('r', 'running'), job('gone', 'running'), job('on-agent', 'running', 'a1'), job('s', 'starting')],
      [
        { id: 'c-r', jobId: 'r', running: true },
        { id: 'c-s', jobId: 's', running: false },
      ],
    );
    expect(plan.map((p) => [(p.job as { id: string }).id, p.action])).toEqual([
      ['q', 'wait'],
      ['p', 'requeue'],
      ['r', 'reattach'],
      ['gone', 'fail'],
      ['on-agent', 'fail'],
      ['s', 'fail'],
    ]);
    expect(plan[3]).toMatchObject({ reason: "the hub restarted and the job's container was gone" });
  });
});

describe('the job lifecycle on a scripted backend', () => {
  it('runs a job: its runtime gets the task, its reports are stored once each, and its container goes', async () => {
    const h = hub();
    const job = h.jobs.submit({ run: 'echo hi' }, admin);
    const { link, session } = await dialIn(h, job.id);
    expect(link.sent[0]).toMatchObject({ t: 'welcome', acked: 0, task: { steps: [{ run: 'echo hi' }] } });
    session.report(out(1, 'hi\n'));
    session.report(out(1, 'hi\n')); // resent after a reconnect: seen before
    session.report({ t: 'done', n: 2, exitCode: 0, outcome: 'succeeded' });
    expect(await until(h, job.id, ended)).toBe('succeeded');
    expect(stdout(h, job.id)).toBe('hi\n');
    expect(h.backend.calls).toContain(`destroy ${h.store.get(job.id)!.containerId}`);
    expect(link.closed).toMatchObject({ code: 1000 });
  });

  it("reports a job's end without waiting for its container's removal, and a stopping hub waits for that removal", async () => {
    const h = hub();
    let release!: () => void;
    h.backend.destroyGate = new Promise((r) => (release = r));
    const job = h.jobs.submit({ run: 'true' }, admin);
    const { session } = await dialIn(h, job.id);
    session.report({ t: 'done', n: 1, exitCode: 0, outcome: 'succeeded' });
    expect(await until(h, job.id, ended)).toBe('succeeded');
    const container = h.backend.containers[0]!;
    expect(h.backend.calls).toContain(`destroy ${container.ref.id}`);
    expect(container.removed).toBe(false);
    // Going already: maintenance does not count it as an orphan.
    expect(await h.reap(true)).toEqual([]);
    let stopped = false;
    const stopping = h.jobs.stop().then(() => (stopped = true));
    await new Promise((r) => setImmediate(r));
    expect(stopped).toBe(false);
    release();
    await stopping;
    expect(container.removed).toBe(true);
  });

  it('cancels a running job: its runtime is told, and it ends cancelled after the grace when the runtime says nothing', async () => {
    const h = hub();
    const job = h.jobs.submit({ run: 'sleep 100' }, admin);
    const { link } = await dialIn(h, job.id);
    await h.jobs.cancel(job.id, admin);
    expect(link.sent.at(-1)).toEqual({ t: 'cancel', reason: 'cancelled by request' });
    expect(h.store.get(job.id)!.state).toBe('running');
    expect(await until(h, job.id, ended)).toBe('cancelled');
  });

  it('checks the snapshot limit again at the commit: one kept while the job ran leaves no room, and the job says so', async () => {
    const h = hub(new FakeBackend(), { DOCKER_AGENT_MAX_SNAPSHOTS_PER_PRINCIPAL: '1' });
    const job = h.jobs.submit({ run: 'true', snapshot: true }, admin);
    const { session } = await dialIn(h, job.id);
    new Snapshots(new SnapshotStore(h.db), h.backend, { http: 'http://hub', ws: 'ws://hub' }, new StorageBudget(h.db, 1024 ** 3)).record({
      id: 'meanwhile',
      owner: admin.id,
      source: 'test',
      image: 'snap/x',
      bytes: 1,
    });
    session.report({ t: 'done', n: 1, exitCode: 0, outcome: 'succeeded' });
    await until(h, job.id, ended);
    expect(
      h.events
        .read(job.id, 1, 100)
        .map(toWire)
        .find((e) => e.type === 'error'),
    ).toMatchObject({
      code: 'LIMIT_REACHED',
      message: expect.stringContaining('DOCKER_AGENT_MAX_SNAPSHOTS_PER_PRINCIPAL=1'),
    });
    expect(h.backend.calls).not.toContain(`snapshot ${h.store.get(job.id)!.containerId}`);
  });

  it('cancels a job while its snapshot is taken: the job ends at once, the snapshot is not kept', async () => {
    const h = hub();
    let release!: () => void;
    h.backend.snapshotGate = new Promise((r) => (release = r));
    const job = h.jobs.submit({ run: 'true', snapshot: true }, admin);
    const { session } = await dialIn(h, job.id);
    session.report({ t: 'done', n: 1, exitCode: 0, outcome: 'succeeded' });
    await until(h, job.id, (s) => s === 'snapshotting');
    await h.jobs.cancel(job.id, admin);
    expect(await until(h, job.id, ended)).toBe('cancelled');
    expect(h.store.get(job.id)!.reason).toBe('cancelled by request');
    // The commit finishes after all; its image goes once it is there (in the same turn).
    release();
    await new Promise((r) => setImmediate(r));
    expect(h.backend.calls).toContain(`remove image snap/${job.id}`);
  });

  it("ends a job whose runtime never dials in as error, naming the wait and the container's last words", async () => {
    const h = hub();
    const job = h.jobs.submit({ run: 'true' }, admin);
    expect(await until(h, job.id, ended)).toBe('error');
    expect(h.store.get(job.id)!.reason).toBe('the runtime did not connect within 0.3 s');
    expect(
      h.events
        .read(job.id, 1, 100)
        .map(toWire)
        .find((e) => e.type === 'error'),
    ).toMatchObject({ code: 'AGENT_LOST', message: expect.stringContaining('the runtime said goodbye') });
  });

  it('ends a job whose container stops before the job ends as error', async () => {
    const h = hub();
    const job = h.jobs.submit({ run: 'true' }, admin);
    await dialIn(h, job.id);
    h.backend.containers[0]!.exit(1);
    expect(await until(h, job.id, ended)).toBe('error');
    expect(h.store.get(job.id)!.reason).toBe('the container stopped (exit code 1)');
  });

  it('after a restart re-attaches a running job: the runtime dials in with its session and resends only what was not stored', async () => {
    const backend = new FakeBackend();
    const first = hub(backend);
    const job = first.jobs.submit({ run: 'echo a; echo b' }, admin);
    const { link, session } = await dialIn(first, job.id);
    session.report(out(1, 'a\n'));
    const sessionToken = (link.sent[0] as { session: string }).session;
    first.close();
    hubs = hubs.filter((x) => x !== first);

    const second = hub(backend);
    await second.recover();
    const again = new FakeLink();
    const resumed = second.registry.attach(sessionToken, again);
    expect(again.sent[0]).toMatchObject({ t: 'welcome', acked: 1 });
    resumed.report(out(2, 'b\n'));
    resumed.report({ t: 'done', n: 3, exitCode: 0, outcome: 'succeeded' });
    expect(await until(second, job.id, ended)).toBe('succeeded');
    expect(stdout(second, job.id)).toBe('a\nb\n');
    expect(() => second.registry.attach(backend.tokenOf(job.id), new FakeLink())).toThrow(/unknown or spent agent token/);
  });
});

describe('the warm pool on a scripted backend', () => {
  it("counts its waiting containers against the hub's limit but gives one up for a queued job that needs the slot", async () => {
    const h = hub(new FakeBackend(), { DOCKER_AGENT_MAX_JOBS: '2', DOCKER_AGENT_POOL_MIN_IDLE: '2' });
    const isPool = (id: string) => id.startsWith('pool:');
    const both = Promise.all([h.backend.started(isPool), h.backend.started(isPool)]);
    h.jobs.pump();
    await both;
    const pooled = () => h.backend.containers.filter((c) => c.spec.pool && !c.removed);
    expect(pooled()).toHaveLength(2);
    // A job of a profile without a pool: no warm container fits it, and both slots are the pool's.
    const job = h.jobs.submit({ run: 'make', profile: 'builder' }, admin);
    await h.backend.started(job.id);
    expect(pooled()).toHaveLength(1);
    expect(h.backend.calls.filter((c) => c.startsWith('destroy'))).toHaveLength(1);
  });
});

describe('a named agent on a scripted backend', () => {
  it('is refused past the agents and the snapshots a principal may keep, naming the limit', async () => {
    const h = hub(new FakeBackend(), { DOCKER_AGENT_MAX_AGENTS_PER_PRINCIPAL: '1', DOCKER_AGENT_MAX_SNAPSHOTS_PER_PRINCIPAL: '0' });
    const agent = h.agents.create({ name: 'only' }, admin);
    expect(() => h.agents.create({ name: 'second' }, admin)).toThrow(/DOCKER_AGENT_MAX_AGENTS_PER_PRINCIPAL=1/);
    await h.backend.started(agentLogKey(agent.id));
    await new Promise((resolve) => setImmediate(resolve));
    h.registry.attach(h.backend.tokenOf(agentLogKey(agent.id)), new FakeLink());
    await expect(h.agents.snapshot('only', admin)).rejects.toMatchObject({
      code: 'LIMIT_REACHED',
      status: 429,
      message: expect.stringContaining('DOCKER_AGENT_MAX_SNAPSHOTS_PER_PRINCIPAL=0'),
    });
  });

  it('runs its jobs one at a time, stops (volume kept) and starts on a fresh container', async () => {
    const h = hub();
    const agent = h.agents.create({ name: 'unit' }, admin);
    const key = agentLogKey(agent.id);
    // Its container starts once its image is ready (after create returns); the service takes it up in the same turn.
    await h.backend.started(key);
    await new Promise((resolve) => setImmediate(resolve));
    const link = new FakeLink();
    const session = h.registry.attach(h.backend.tokenOf(key), link);
    expect(link.sent[0]).toMatchObject({ t: 'welcome', acked: 0 });
    expect(h.agents.get('unit').state).toBe('running');

    const one = h.agents.submitJob({ agent: 'unit', run: 'echo one' }, admin);
    const two = h.agents.submitJob({ agent: 'unit', run: 'echo two' }, admin);
    await until(h, one.id, (s) => s === 'running');
    expect(h.store.get(two.id)!.state).toBe('queued');
    expect(link.sent.filter((m) => m.t === 'task')).toHaveLength(1);
    session.report({ t: 'done', n: 1, exitCode: 0, outcome: 'succeeded' });
    expect(await until(h, one.id, ended)).toBe('succeeded');
    await until(h, two.id, (s) => s === 'running');
    expect(link.sent.filter((m) => m.t === 'task')).toHaveLength(2);
    expect(link.closed).toBeUndefined();

    await h.agents.stop('unit', admin);
    expect(h.agents.get('unit')).toMatchObject({ state: 'stopped', reason: 'stopped by request' });
    expect(await until(h, two.id, ended)).toBe('cancelled');
    expect(h.backend.containers[0]!.removed).toBe(true);
    expect(h.backend.removedVolumes).toEqual([]);

    const again = h.backend.started(key);
    await h.agents.start('unit', admin);
    await again;
    expect(h.backend.calls.filter((c) => c.startsWith('start agent:'))).toEqual([`start ${key} volume=${agent.volume}`, `start ${key} volume=${agent.volume}`]);
    await h.agents.destroy('unit', admin, { keepVolume: false });
    expect(h.backend.removedVolumes).toEqual([agent.volume]);
  });
});

describe("the warm pool keeps its containers' runtimes to the same rules as every other", () => {
  /** A hub with one idle pooled container whose runtime has dialled in; returns it and its first session. */
  async function warmHub(backend = new FakeBackend()) {
    const h = hub(backend, { DOCKER_AGENT_POOL_MIN_IDLE: '1' });
    const started = backend.started((id) => id.startsWith('pool:'));
    h.jobs.pump();
    const c = await started;
    await new Promise((resolve) => setImmediate(resolve));
    const link = new FakeLink();
    const token = c.spec.env.DOCKER_AGENT_AGENT_TOKEN!;
    h.registry.attach(token, link);
    return { h, c, token, link, session: (link.sent[0] as { session: string }).session };
  }

  it('keeps a sandbox whose runtime dialled in before the engine answered its start: connected, never timed out', async () => {
    const backend = new FakeBackend();
    let answer!: () => void;
    backend.startGate = new Promise((resolve) => (answer = resolve));
    const h = hub(backend, { DOCKER_AGENT_POOL_MIN_IDLE: '1' });
    const started = backend.started((id) => id.startsWith('pool:'));
    h.jobs.pump();
    const c = await started;
    h.registry.attach(c.spec.env.DOCKER_AGENT_AGENT_TOKEN!, new FakeLink());
    // Taken while the engine has not answered yet: the job knows its container all the same.
    const early = h.jobs.submit({ run: 'true' }, admin);
    expect(h.store.get(early.id)).toMatchObject({ state: 'running', containerId: c.ref.id });
    answer();
    await new Promise((resolve) => setImmediate(resolve));
    // Before, it stayed "starting", then waited for a dial that had come and was ended when the connect timeout ran out.
    expect(h.store.get(early.id)!.state).toBe('running');
  });

  it('stores a pooled job going from queued to running in one transaction, and sends the task in the same turn', async () => {
    const { h, link } = await warmHub();
    const stored: string[][] = [];
    const publish = h.bus.publish.bind(h.bus);
    h.bus.publish = (id, events, also) => (stored.push(events.map((e) => (e.type === 'status' ? e.state : e.type))), publish(id, events, also));
    const job = h.jobs.submit({ run: 'echo warm' }, admin);
    expect(stored).toEqual([['queued'], ['preparing', 'starting', 'running']]);
    expect(h.store.get(job.id)).toMatchObject({ state: 'running', containerId: expect.any(String), startedAt: expect.any(String) });
    expect(link.sent.at(-1)).toMatchObject({ t: 'task' });
  });

  it("spends a pooled container's one-time token at its first attach", async () => {
    const { h, token } = await warmHub();
    expect(() => h.registry.attach(token, new FakeLink())).toThrow(/unknown or spent agent token/);
  });

  it('keeps a pooled job when its runtime reconnects with its session after the connection dropped', async () => {
    const { h, c, session, link } = await warmHub();
    const job = h.jobs.submit({ run: 'echo warm' }, admin);
    await until(h, job.id, (s) => s === 'running');
    expect(h.store.get(job.id)!.containerId).toBe(c.ref.id);
    expect(link.sent.some((m) => m.t === 'task')).toBe(true);
    const again = new FakeLink();
    const resumed = h.registry.attach(session, again);
    expect(again.sent[0]).toMatchObject({ t: 'welcome' });
    resumed.report(out(1, 'warm\n'));
    resumed.report({ t: 'done', n: 2, exitCode: 0, outcome: 'succeeded' });
    expect(await until(h, job.id, ended)).toBe('succeeded');
    expect(stdout(h, job.id)).toBe('warm\n');
  });

  it('re-attaches a pooled job after a hub restart, and its container is not taken for an orphan', async () => {
    const backend = new FakeBackend();
    const { h: first, c, session } = await warmHub(backend);
    const job = first.jobs.submit({ run: 'echo warm' }, admin);
    await until(first, job.id, (s) => s === 'running');
    first.close();
    hubs = hubs.filter((x) => x !== first);

    const second = hub(backend);
    await second.recover();
    expect(c.removed).toBe(false);
    const resumed = second.registry.attach(session, new FakeLink());
    resumed.report({ t: 'done', n: 1, exitCode: 0, outcome: 'succeeded' });
    expect(await until(second, job.id, ended)).toBe('succeeded');
  });

  it('never gives a job from a snapshot a pooled container of the plain profile', async () => {
    const { h, c } = await warmHub();
    const snaps = new Snapshots(new SnapshotStore(h.db), h.backend, { http: 'http://hub', ws: 'ws://hub' }, new StorageBudget(h.db, 1024 ** 3));
    snaps.record({ id: 'snap-1', owner: admin.id, source: 'test', image: 'snap/one', bytes: 1 });
    const job = h.jobs.submit({ run: 'true', from: { snapshot: 'snap-1' } }, admin);
    await until(h, job.id, (s) => s === 'starting');
    const own = h.backend.containers.find((x) => x.ref.jobId === job.id)!;
    expect(own.spec.image).toBe('snap/one');
    expect(h.store.get(job.id)!.containerId).not.toBe(c.ref.id);
  });
});

describe("recovery judges a container by the hub's records", () => {
  it("finds a job's pooled container by its id, whatever its labels say", () => {
    const job = { id: 'j1', state: 'running', containerId: 'c9' } as never;
    const [step] = recoveryPlan([job], [{ id: 'c9', jobId: 'pool:p1', pool: 'default', running: true }]);
    expect(step).toMatchObject({ action: 'reattach', container: { id: 'c9' } });
  });
});

describe('nothing a caller does to a named agent ends the hub', () => {
  let unhandled: unknown[];
  const onUnhandled = (err: unknown) => unhandled.push(err);
  beforeEach(() => {
    unhandled = [];
    process.on('unhandledRejection', onUnhandled);
  });
  afterEach(() => {
    process.off('unhandledRejection', onUnhandled);
  });

  async function runningAgent(h: Hub, name: string) {
    const agent = h.agents.create({ name }, admin);
    await h.backend.started(agentLogKey(agent.id));
    await new Promise((resolve) => setImmediate(resolve));
    h.registry.attach(h.backend.tokenOf(agentLogKey(agent.id)), new FakeLink());
    return agent;
  }

  it('takes a start and a destroy sent together one after the other: the agent is gone, no container is left, the hub goes on', async () => {
    const h = hub();
    const agent = await runningAgent(h, 'twice');
    await h.agents.stop('twice', admin);
    const starting = h.agents.start('twice', admin);
    const destroying = h.agents.destroy('twice', admin, { keepVolume: true });
    await Promise.all([starting, destroying]);
    // The boot queued before the destroy ran first; the destroy then removed what it started.
    await until(h, h.jobs.submit({ run: 'true' }, admin).id, (s) => s === 'starting');
    expect(() => h.agents.get('twice', admin)).toThrow(/no agent named twice/);
    const left = h.backend.containers.filter((c) => c.spec.agent?.id === agent.id && !c.removed);
    expect(left).toEqual([]);
    expect(unhandled).toEqual([]);
  });

  it("takes a destroy sent while the agent's image builds after the build: the build's progress lands nowhere, the hub goes on", async () => {
    const h = hub();
    let release!: () => void;
    h.backend.prepareGate = new Promise((r) => (release = r));
    const agent = h.agents.create({ name: 'building' }, admin);
    const destroying = h.agents.destroy('building', admin, { keepVolume: false });
    release();
    await destroying;
    expect(() => h.agents.get('building', admin)).toThrow(/no agent named building/);
    expect(h.backend.containers.filter((c) => c.spec.agent?.id === agent.id && !c.removed)).toEqual([]);
    h.backend.prepareGate = undefined;
    expect(await until(h, h.jobs.submit({ run: 'true' }, admin).id, (s) => s === 'starting')).toBe('starting');
    expect(unhandled).toEqual([]);
  });

  it('ends an agent whose engine loses its container with that reason, and keeps serving', async () => {
    class LosingBackend extends FakeBackend {
      lose?: (err: Error) => void;
      override wait(ref: ContainerRef) {
        if (!ref.jobId.startsWith('agent:')) return super.wait(ref);
        return new Promise<{ exitCode: number }>((_, reject) => (this.lose = reject));
      }
    }
    const backend = new LosingBackend();
    const h = hub(backend);
    await runningAgent(h, 'lost');
    backend.lose!(new Error('no such container'));
    const agent = await when(h, agentLogKey(h.agents.get('lost').id), () => {
      const a = h.agents.get('lost');
      return a.state === 'error' ? a : undefined;
    });
    expect(agent.reason).toMatch(/the engine lost track of the container: no such container/);
    expect(h.jobs.submit({ run: 'true' }, admin).state).toBe('queued');
    expect(unhandled).toEqual([]);
  });
});

describe('a full disk under the store (SQLite says SQLITE_FULL)', () => {
  let unhandled: unknown[];
  const onUnhandled = (err: unknown) => unhandled.push(err);
  beforeEach(() => {
    unhandled = [];
    process.on('unhandledRejection', onUnhandled);
  });
  afterEach(() => {
    process.off('unhandledRejection', onUnhandled);
  });

  /** The jobs API as the hub mounts it, for one admin caller. */
  function api(h: Hub) {
    const app = new Hono<HubEnv>();
    answerErrors(app);
    app.use('*', async (c, next) => {
      c.set('principal', admin);
      await next();
    });
    app.route('/v1/jobs', jobsRoutes(h.jobs, h.agents, { http: 'http://hub', ws: 'ws://hub' }));
    return (body: unknown) => app.request('/v1/jobs', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  }
  /** No page more than the file has now, and the room left in them taken: the next write that needs space fails as on a full disk. */
  function fill(db: Db) {
    db.exec('CREATE TABLE IF NOT EXISTS filler (b BLOB)');
    db.pragma(`max_page_count = ${db.pragma('page_count', { simple: true }) as number}`);
    const put = db.prepare('INSERT INTO filler VALUES (?)');
    for (const size of [4096, 512, 64, 1]) {
      try {
        for (;;) put.run(Buffer.alloc(size));
      } catch (err) {
        expect((err as { code: string }).code).toBe('SQLITE_FULL');
      }
    }
  }

  it('answers a submit 503 naming the full disk, ends only the job whose output could not be stored, and the hub goes on', async () => {
    const h = hub();
    const submit = api(h);
    const job = h.jobs.submit({ run: 'echo hi' }, admin);
    const other = h.jobs.submit({ run: 'echo other' }, admin);
    const { session } = await dialIn(h, job.id);
    await dialIn(h, other.id);
    session.report(out(1, 'before the disk filled\n'));
    expect(stdout(h, job.id)).toBe('before the disk filled\n');

    fill(h.db);
    // Larger than a page: a row of it needs pages the file may not grow by.
    const refused = await submit({ run: `echo ${'x'.repeat(20_000)}` });
    expect(refused.status).toBe(503);
    expect(((await refused.json()) as { error: { code: string; message: string } }).error).toMatchObject({
      code: 'DISK_FULL',
      message: expect.stringMatching(/the hub's disk is full or failing \(SQLITE_FULL/),
    });
    // Output that cannot be stored ends its job (its container goes), not the channel's caller or the hub.
    expect(() => session.report(out(2, 'x'.repeat(256 * 1024)))).not.toThrow();
    const container = h.backend.containers.find((c) => c.ref.jobId === job.id)!;
    for (const until = Date.now() + 5000; !container.removed && Date.now() < until;) await new Promise((r) => setTimeout(r, 10));
    expect(container.removed).toBe(true);
    expect(h.backend.containers.find((c) => c.ref.jobId === other.id)!.removed).toBe(false);

    // Space again: what was stored is there, and new work is taken.
    h.db.pragma('max_page_count = 1073741823');
    expect(stdout(h, job.id)).toBe('before the disk filled\n');
    expect((await submit({ run: 'true' })).status).toBe(201);
    expect(unhandled).toEqual([]);
  });
});

describe('the disk watch on a scripted backend', () => {
  it('ends a job whose container wrote past the limit with DISK_LIMIT, its output kept, and leaves the others', async () => {
    const backend = new FakeBackend();
    const h = hub(backend);
    const watch = new DiskWatch({ backend, limit: 1000, intervalMs: 60_000, log: () => {} });
    // The hub's sandboxes are watched from their start; here the test adds the job's and runs a round itself.
    const big = h.jobs.submit({ run: 'write a lot' }, admin);
    const small = h.jobs.submit({ run: 'write little' }, admin);
    const { session } = await dialIn(h, big.id);
    await dialIn(h, small.id);
    session.report(out(1, 'kept\n'));
    const containerOf = (id: string) => backend.containers.find((c) => c.ref.jobId === id)!;
    backend.written.set(containerOf(big.id).ref.id, 1001);
    backend.written.set(containerOf(small.id).ref.id, 1000);
    for (const id of [big.id, small.id]) {
      const run = (h.jobs as unknown as { scheduler: { get(id: string): { sandbox: Watched } } }).scheduler.get(id);
      watch.add(run.sandbox);
    }
    await watch.check();
    watch.stop();
    expect(await until(h, big.id, ended)).toBe('error');
    const errors = h.events
      .read(big.id, 1, 1000)
      .map(toWire)
      .filter((e) => e.type === 'error');
    expect(errors).toEqual([
      expect.objectContaining({ code: 'DISK_LIMIT', message: expect.stringMatching(/wrote 1001 bytes .* \(DOCKER_AGENT_MAX_DISK_BYTES\)/) }),
    ]);
    expect(h.store.get(big.id)!.reason).toMatch(/DOCKER_AGENT_MAX_DISK_BYTES/);
    expect(stdout(h, big.id)).toBe('kept\n');
    expect(h.store.get(small.id)!.state).toBe('running');
  });
});

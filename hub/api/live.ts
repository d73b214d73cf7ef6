// GET /v1/live: the dashboard's one connection per tab, as server-sent events.
//   event `overview`: the caller's jobs (the unfinished ones and the newest ended),
//     agents with their CPU and memory over the last minutes, the warm pool, the
//     engine's and the hub's health, and the task metrics; sent when it changed
//     (woken by any stored event, and every few seconds for the charts);
//   with ?job=ID, event `job`: that job's events from ?from (or Last-Event-ID), each
//     with its seq as the SSE id, ending with its final status;
//   with ?agent=NAME, event `agent-log`: the agent's log the same way, then live;
//   event `end`: the session or token stopped working; the page signs in again.
// The page opens another for another job or agent: one item per connection keeps the
// server side one cursor and the client side one EventSource.
import { EventEmitter } from 'node:events';
import { Hono, type Context } from 'hono';
import { streamSSE, type SSEStreamingApi } from 'hono/streaming';
import type { TaskStats } from '../../schemas/types.gen.js';
import type { HealthReport, LiveOverview } from '../../schemas/live.js';
import { agentView, type AgentService } from '../agents/service.js';
import { HubError } from '../platform/errors.js';
import type { EventBus } from '../events/event-bus.js';
import { isFinalStatus, isTerminal } from '../jobs/lifecycle.js';
import { followLog } from '../jobs/log-cursor.js';
import type { JobService } from '../jobs/service.js';
import type { Links } from '../platform/links.js';
import type { Principal } from '../platform/principal.js';
import { agentLogKey, toWire, type EventLog } from '../store/events.js';
import type { StreamRegistry } from './stream-registry.js';
import { jobView } from './jobs.js';
import { needsScope, type HubEnv } from './env.js';

/** How often the overview is looked at with nothing stored (charts, durations, health). */
const TICK_MS = 2000;
/** A burst of events (a job printing) makes one overview, not one each. */
const COALESCE_MS = 200;
/** A comment line this often keeps proxies from closing a quiet stream. */
const KEEPALIVE_MS = 15_000;
const NEWEST_SHOWN = 50;
const UNFINISHED_SHOWN = 200;
/** A client that takes longer than this to take one message is let go. */
const WRITE_TIMEOUT_MS = 10_000;

export interface LiveDeps {
  jobs: JobService;
  agents: AgentService;
  events: EventLog;
  bus: EventBus;
  links: Links;
  streams: StreamRegistry;
  /** What GET /health answers, cached by the caller. */
  health: () => Promise<HealthReport>;
  /** Task metrics, cached by the caller. */
  stats: (p: Principal) => TaskStats;
}

const UNFINISHED = ['queued', 'preparing', 'starting', 'running', 'snapshotting'] as const;

function overviewOf(deps: LiveDeps, p: Principal, health: HealthReport, stats: TaskStats): LiveOverview {
  // The unfinished ones (few, by the state index) and the newest of all (by rowid, no sort).
  const unfinished = deps.jobs.list({ states: [...UNFINISHED], limit: UNFINISHED_SHOWN }, p);
  const newest = deps.jobs.list({ states: [], limit: NEWEST_SHOWN }, p);
  const seen = new Set(unfinished.map((j) => j.id));
  return {
    jobs: [...unfinished, ...newest.filter((j) => !seen.has(j.id))].map((j) => jobView(j, deps.links)),
    agents: deps.agents.list(p).map((a) => ({ ...agentView(a), samples: deps.agents.history.of(a.id) })),
    pool: deps.jobs.poolState(),
    health,
    stats,
  };
}

/** The one item a stream follows besides the overview, checked before the stream opens. */
function itemOf(c: Context<HubEnv>, deps: LiveDeps): { key: string; event: string; from: number; job?: string } | undefined {
  const p = c.get('principal');
  const job = c.req.query('job');
  const agent = c.req.query('agent');
  if (job !== undefined && agent !== undefined)
    throw new HubError('VALIDATION_FAILED', 'give job or agent, not both', { issues: [{ path: 'agent', message: 'give job or agent, not both' }] });
  if (job === undefined && agent === undefined) return undefined;
  // A reconnecting EventSource says where it was; otherwise ?from (default: the start).
  const lastId = c.req.header('last-event-id');
  const fromRaw = lastId !== undefined ? String(Number(lastId) + 1) : (c.req.query('from') ?? '1');
  const from = Number(fromRaw);
  if (!Number.isInteger(from) || from < 1) {
    throw new HubError('VALIDATION_FAILED', `from=${fromRaw}: expected an event seq, an integer from 1`, {
      issues: [{ path: 'from', message: 'expected an integer from 1' }],
    });
  }
  if (job !== undefined) return { key: deps.jobs.get(job, p).id, event: 'job', from, job };
  return { key: agentLogKey(deps.agents.get(agent!, p).id), event: 'agent-log', from };
}

export function liveRoutes(deps: LiveDeps) {
  const app = new Hono<HubEnv>();
  app.use('*', needsScope('jobs', 'following the dashboard'));

  app.get('/', (c) => {
    // Hono answers HEAD with the GET handler and never reads the body: no stream for it.
    if (c.req.raw.method === 'HEAD') return c.body(null, 200, { 'content-type': 'text/event-stream' });
    const p = c.get('principal');
    const item = itemOf(c, deps);
    // Each tab holds one: it counts with the principal's other streams (429 past the limit).
    const release = deps.streams.admit(p);
    return streamSSE(c, async (stream) => {
      const live = new LiveStream(stream);
      deps.streams.add(live, p);
      try {
        await stream.writeSSE({ event: 'hello', data: '{}', retry: 2000 });
        await Promise.all([overviews(deps, p, live), item ? follow(deps, item, live) : undefined]);
      } finally {
        live.end();
        release();
      }
    });
  });
  return app;
}

/**
 * One SSE response as the stream registry sees it (close ends it with a reason);
 * it also wakes whoever waits when the client goes away.
 */
class LiveStream extends EventEmitter {
  gone = false;
  private lastWrite = Date.now();
  constructor(readonly sse: SSEStreamingApi) {
    super();
    sse.onAbort(() => this.end());
  }

  async send(event: string, data: string, id?: string): Promise<void> {
    if (this.gone) return;
    let timer: NodeJS.Timeout | undefined;
    const stuck = new Promise<void>((r) => (timer = setTimeout(() => (this.end(), r()), WRITE_TIMEOUT_MS)));
    try {
      await Promise.race([this.sse.writeSSE({ event, data, ...(id ? { id } : {}) }), stuck]);
    } finally {
      clearTimeout(timer);
    }
    this.lastWrite = Date.now();
  }

  async keepAlive(): Promise<void> {
    if (Date.now() - this.lastWrite < KEEPALIVE_MS || this.gone) return;
    await this.sse.write(': keep-alive\n\n');
    this.lastWrite = Date.now();
  }

  /** The registry's way to end it: the token was revoked, ran out, or the session signed out. */
  close(_code: number, reason: string): void {
    // Say why, but end it whether or not the client takes the message.
    void this.send('end', JSON.stringify({ reason }));
    setTimeout(() => this.end(), 100).unref();
  }

  end(): void {
    if (this.gone) return;
    this.gone = true;
    void this.sse.close();
    this.emit('close');
  }
}

async function overviews(deps: LiveDeps, p: Principal, live: LiveStream): Promise<void> {
  let wake = () => {};
  live.once('close', () => wake());
  const unfollow = deps.bus.followAll(() => wake());
  let last = '';
  try {
    while (!live.gone) {
      const woken = new Promise<void>((r) => (wake = r));
      const text = JSON.stringify(overviewOf(deps, p, await deps.health(), deps.stats(p)));
      if (text !== last) {
        await live.send('overview', text);
        last = text;
      } else await live.keepAlive();
      await Promise.race([woken, delay(TICK_MS)]);
      await delay(COALESCE_MS);
    }
  } finally {
    unfollow();
  }
}

async function follow(deps: LiveDeps, item: { key: string; event: string; from: number; job?: string }, live: LiveStream): Promise<void> {
  await followLog(deps.events, deps.bus, item.key, item.from, {
    open: () => !live.gone,
    onGone: (wake) => live.once('close', wake),
    send: (e) => live.send(item.event, JSON.stringify(toWire(e)), String(e.seq)),
    ...(item.job ? { isLast: isFinalStatus, ended: () => isTerminal(deps.jobs.stateOf(item.job!) ?? 'cancelled') } : {}),
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

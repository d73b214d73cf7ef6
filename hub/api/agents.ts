// /v1/agents: named agents — create, look at, list, start, stop, destroy, and
// follow their logs. Jobs are sent to an agent through POST /v1/jobs {agent}.
// Every route: a principal with the `jobs` scope, and only its own agents (admin: all).
import { EventEmitter } from 'node:events';
import { Hono } from 'hono';
import { agentView, type AgentService } from '../agents/service.js';
import { HubError, validationError } from '../platform/errors.js';
import type { EventBus } from '../events/event-bus.js';
import { agentLogKey, toWire, type EventLog } from '../store/events.js';
import { validateAgentRequest } from '../platform/validation.js';
import type { Snapshots } from '../snapshots/snapshots.js';
import { readJson } from './body.js';
import { needsScope, type HubEnv } from './env.js';
import type { StreamRegistry } from './stream-registry.js';

const PAGE = 256;
const MAX_TAIL = 10_000;

export function agentsRoutes(agents: AgentService, snapshots: Snapshots, events: EventLog, bus: EventBus, streams: StreamRegistry) {
  const app = new Hono<HubEnv>();
  app.use('*', needsScope('jobs', 'working with agents'));

  app.post('/', async (c) => {
    const parsed = validateAgentRequest(await readJson(c));
    if (!parsed.ok) throw validationError('agent request', parsed.issues);
    return c.json(agentView(agents.create(parsed.value, c.get('principal'))), 201);
  });

  app.get('/', (c) => c.json({ agents: agents.list(c.get('principal')).map(agentView) }));

  app.get('/:name', (c) => c.json(agentView(agents.get(c.req.param('name'), c.get('principal')))));

  app.post('/:name/start', async (c) => c.json(agentView(await agents.start(c.req.param('name'), c.get('principal'))), 202));

  app.post('/:name/stop', async (c) => c.json(agentView(await agents.stop(c.req.param('name'), c.get('principal')))));

  // Commits the agent (paused while it is read) with its /workspace.
  app.post('/:name/snapshot', async (c) => c.json(snapshots.view(await agents.snapshot(c.req.param('name'), c.get('principal'))), 201));

  app.delete('/:name', async (c) => {
    const keep = c.req.query('keepVolume');
    if (keep !== undefined && !['true', 'false'].includes(keep)) {
      throw validationError('query', [{ path: 'keepVolume', message: 'expected true or false' }]);
    }
    await agents.destroy(c.req.param('name'), c.get('principal'), { keepVolume: keep === 'true' });
    return c.body(null, 204);
  });

  // The agent's lifecycle and its jobs' output as NDJSON: the newest `tail` events (all without it), then with `follow` what comes.
  app.get('/:name/logs', (c) => {
    const agent = agents.get(c.req.param('name'), c.get('principal'));
    const tailRaw = c.req.query('tail');
    const tail = tailRaw === undefined ? undefined : Number(tailRaw);
    if (tail !== undefined && !(Number.isInteger(tail) && tail >= 0 && tail <= MAX_TAIL)) {
      throw new HubError('VALIDATION_FAILED', `tail=${tailRaw}: expected an integer from 0 to ${MAX_TAIL}`, {
        issues: [{ path: 'tail', message: `expected an integer from 0 to ${MAX_TAIL}` }],
      });
    }
    // Hono answers HEAD with this handler and never reads the body: no stream for it.
    if (c.req.raw.method === 'HEAD') return c.body(null, 200, { 'content-type': 'application/x-ndjson' });
    const follow = ['1', 'true'].includes(c.req.query('follow') ?? '');
    // A followed log is held open: it counts with the principal's other streams (429 past the limit).
    const release = follow ? streams.admit(c.get('principal')) : () => {};
    const key = agentLogKey(agent.id);
    let next = tail === undefined ? 1 : Math.max(1, events.lastSeq(key) - tail + 1);
    let wake = () => {};
    let unfollow = () => {};
    let ended = false;
    // A followed log is an open stream: it ends when its token is revoked or its session signs out.
    const handle = Object.assign(new EventEmitter(), {
      close: () => {
        ended = true;
        wake();
      },
    });
    const encoder = new TextEncoder();
    const body = new ReadableStream<Uint8Array>({
      start() {
        if (!follow) return;
        unfollow = bus.follow(key, () => wake());
        streams.add(handle, c.get('principal'));
      },
      // Pulled as the client reads: a slow reader holds one page at most.
      async pull(controller) {
        for (;;) {
          const more = new Promise<void>((r) => (wake = r));
          const page = ended ? [] : events.read(key, next, PAGE);
          if (page.length) {
            next = page.at(-1)!.seq + 1;
            controller.enqueue(encoder.encode(page.map((e) => `${JSON.stringify(toWire(e))}\n`).join('')));
            return;
          }
          if (!follow || ended) {
            unfollow();
            release();
            handle.emit('close');
            controller.close();
            return;
          }
          await more;
        }
      },
      cancel() {
        unfollow();
        release();
        handle.emit('close');
        wake();
      },
    });
    return new Response(body, { headers: { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' } });
  });

  return app;
}

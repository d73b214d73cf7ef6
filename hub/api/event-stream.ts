// WS /v1/jobs/:id/events?from=SEQ: a job's events from SEQ on, then live, closed
// after the final one. Each client is a cursor over the stored log: it reads a
// page, sends it, waits for the socket to drain and reads on, so a slow client
// holds at most one page in memory and a late one gets the same, once.
import { WebSocketServer, type WebSocket } from 'ws';
import { HubError } from '../errors.js';
import type { EventBus } from '../jobs/event-bus.js';
import { isTerminal } from '../jobs/lifecycle.js';
import type { JobService } from '../jobs/service.js';
import { toWire, type EventLog } from '../store/events.js';
import type { Authenticator } from '../auth.js';
import { rejectUpgrade, type UpgradeHandler } from '../agents/upgrade.js';

const PAGE = 64;
const HIGH_WATER = 1024 * 1024;

export interface EventStreamDeps {
  jobs: JobService;
  log: EventLog;
  bus: EventBus;
  auth: Authenticator;
}

export const EVENTS_PATH = /^\/v1\/jobs\/([^/]+)\/events$/;

export function eventStream(deps: EventStreamDeps): UpgradeHandler {
  const wss = new WebSocketServer({ noServer: true });
  return async (req, socket, head) => {
    let jobId: string;
    let from: number;
    try {
      await deps.auth.check(req.headers.authorization);
      const url = new URL(req.url ?? '/', 'http://hub');
      jobId = decodeURIComponent(EVENTS_PATH.exec(url.pathname)![1]!);
      const fromRaw = url.searchParams.get('from') ?? '1';
      from = Number(fromRaw);
      if (!Number.isInteger(from) || from < 1) {
        throw new HubError('VALIDATION_FAILED', `from=${fromRaw}: expected an event seq, an integer from 1`);
      }
      deps.jobs.get(jobId);
    } catch (err) {
      return rejectUpgrade(socket, err instanceof HubError ? err : new HubError('VALIDATION_FAILED', `bad event stream request: ${(err as Error).message}`));
    }
    wss.handleUpgrade(req, socket, head, (ws) => void follow(ws, jobId, from, deps));
  };
}

async function follow(ws: WebSocket, jobId: string, from: number, { jobs, log, bus }: EventStreamDeps) {
  let wake: () => void = () => {};
  const unfollow = bus.follow(jobId, () => wake());
  ws.on('close', () => wake());
  let next = from;
  try {
    while (ws.readyState === ws.OPEN) {
      // Ask for a wake-up before reading, so an event stored in between is not missed.
      const more = new Promise<void>((r) => (wake = r));
      const page = log.read(jobId, next, PAGE);
      for (const e of page) {
        await send(ws, JSON.stringify(toWire(e)));
        next = e.seq + 1;
        if (e.type === 'status' && isTerminal(e.payload.state as never)) {
          ws.close(1000, 'job ended');
          return;
        }
      }
      if (page.length < PAGE) {
        // A `from` past the end of an ended job's log: nothing more will come.
        if (page.length === 0 && isTerminal(jobs.get(jobId).state)) {
          ws.close(1000, 'job ended');
          return;
        }
        await more;
      }
    }
  } catch {
    ws.terminate();
  } finally {
    unfollow();
  }
}

function send(ws: WebSocket, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    ws.send(text, (err) => (err ? reject(err) : resolve()));
    // Only wait for the write when the socket is backed up; otherwise keep going.
    if (ws.bufferedAmount < HIGH_WATER) resolve();
  });
}

// Limits on the agent socket, where every container may dial: a connection must
// send its request (a runtime's upgrade with its token, or its workspace fetch) at
// once. Until it has, it is *waiting*: closed after a few seconds, and when more
// than the cap wait, the one waiting longest is closed. A Unix socket does not say
// which container dialled, so fairness comes from the order instead: a runtime
// sends its request the moment it connects, so a container that floods the socket
// only pushes out its own older idle connections, never the fresh dial of another.
// A request that arrives is answered at once (401 for an unknown token, before any
// WebSocket), and a known token holds one connection per sandbox (a new attach
// replaces the old one), so only waiting connections needed a bound.
import type { Server } from 'node:http';
import type { Socket } from 'node:net';

export interface DialLimits {
  /** Connections that have not sent their request yet (DOCKER_AGENT_MAX_AGENT_DIALS); past it the oldest is closed. */
  maxWaiting: number;
  /** How long a connection may take to send its request's headers. */
  headersTimeoutMs: number;
}

/** A runtime sends its headers in the same instant it connects: seconds are plenty on a loaded host. */
export const AGENT_HEADERS_TIMEOUT_MS = 5000;

export function guardDials(server: Server, limits: DialLimits): void {
  // Node's own timeouts, for what comes after the headers too (a workspace fetch has no body to wait for).
  server.headersTimeout = limits.headersTimeoutMs;
  server.requestTimeout = limits.headersTimeoutMs * 2;
  // One request per connection: a runtime makes one per task, and an idle kept-alive connection would wait uncounted.
  server.keepAliveTimeout = 1;
  /** Waiting connections, oldest first (a Map keeps insertion order), with their timers. */
  const waiting = new Map<Socket, NodeJS.Timeout>();
  const done = (socket: Socket) => {
    clearTimeout(waiting.get(socket));
    waiting.delete(socket);
  };
  let trimming = false;
  const trim = () => {
    trimming = false;
    for (const oldest of waiting.keys()) {
      if (waiting.size <= limits.maxWaiting) break;
      done(oldest);
      oldest.destroy();
    }
  };
  server.on('connection', (socket: Socket) => {
    waiting.set(
      socket,
      setTimeout(() => socket.destroy(), limits.headersTimeoutMs),
    );
    socket.once('close', () => done(socket));
    // Trimmed after the next turn's reads: a connection just accepted has its request (sent as it connected) read first,
    // however many the loop accepted in the same turn.
    if (waiting.size > limits.maxWaiting && !trimming) {
      trimming = true;
      setImmediate(() => setImmediate(trim));
    }
  });
  server.on('request', (req) => done(req.socket));
  // Upgrade listeners run in order: this one is added before the route's, so the socket is counted out first.
  server.prependListener('upgrade', (req) => done(req.socket));
}

// WS /v1/jobs/:id/shell and /v1/agents/:name/shell: an interactive terminal in a
// running job's or agent's container,
// over the shell sub-protocol of schemas/shell-frame.ts. The engine's exec with a
// TTY makes the terminal; this end only carries bytes, window sizes and the exit.
import type { IncomingMessage } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import { parseShellSize, readShellFrame, SHELL_CHANNEL, SHELL_PROTOCOL, shellFrame, type ShellSize } from '../../schemas/shell-frame.js';
import { credentialsOf, type Authenticator } from '../auth/authenticator.js';
import type { Backend, ContainerRef, ExecSession } from '../backend/types.js';
import { HubError } from '../platform/errors.js';
import type { JobService } from '../jobs/service.js';
import type { AgentService } from '../agents/service.js';
import { rejectUpgrade, releaseOnClose, type UpgradeHandler } from './upgrade.js';
import { auditEntry, worthAuditing, type AuditLog } from '../auth/audit.js';
import { requireScope, type Principal } from '../platform/principal.js';
import type { StreamRegistry } from './stream-registry.js';

export const SHELL_PATH = /^\/v1\/(jobs|agents)\/([^/]+)\/shell$/;

/** Open shells per container: enough for a person, not a way to swamp the engine. */
export const MAX_SHELLS_PER_CONTAINER = 4;
/** Keystrokes and pastes, not uploads. */
const MAX_FRAME_BYTES = 256 * 1024;
/** Stop reading the terminal while this much waits to reach a slow client; stop reading the client while this much typed waits for the shell to start. */
const HIGH_WATER = 1024 * 1024;
const DEFAULT_SIZE: ShellSize = { cols: 80, rows: 24 };

export interface ShellStreamDeps {
  jobs: JobService;
  agents: AgentService;
  auth: Authenticator;
  backend: Backend;
  /** Shells end with their token, as event streams do. */
  streams: StreamRegistry;
  audit: AuditLog;
  log: (msg: string) => void;
}

export function shellStream(deps: ShellStreamDeps): UpgradeHandler {
  const open = new Map<string, number>();
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: MAX_FRAME_BYTES,
    handleProtocols: (protocols) => (protocols.has(SHELL_PROTOCOL) ? SHELL_PROTOCOL : false),
  });
  return async (req, socket, head) => {
    let target: Target;
    let principal: Principal | undefined;
    try {
      principal = await deps.auth.checkRequest(credentialsOf('GET', (n) => req.headers[n]));
      requireScope(principal, 'jobs', 'opening a shell');
      target = resolve(req, deps, principal);
      if ((open.get(target.ref.id) ?? 0) >= MAX_SHELLS_PER_CONTAINER) {
        target.done();
        throw new HubError('SHELL_LIMIT', `${MAX_SHELLS_PER_CONTAINER} shells are open in this container already; close one first`);
      }
      try {
        releaseOnClose(socket, deps.streams.admit(principal));
      } catch (err) {
        target.done();
        throw err;
      }
    } catch (err) {
      const e = err instanceof HubError ? err : new HubError('VALIDATION_FAILED', `bad shell request: ${(err as Error).message}`);
      if (worthAuditing('GET', e.status, e)) deps.audit(auditEntry({ method: 'GET', route: 'shell', object: null }, principal, e.status, e));
      return rejectUpgrade(socket, e);
    }
    const who = principal;
    const id = target.ref.id;
    open.set(id, (open.get(id) ?? 0) + 1);
    const release = () => {
      open.set(id, (open.get(id) ?? 1) - 1);
      target.done();
    };
    wss.handleUpgrade(req, socket, head, (ws) => {
      // A frame past maxPayload (or a malformed one) is reported here before ws closes with its code (1009, 1002); unheard, it would throw.
      ws.on('error', () => {});
      if (ws.protocol !== SHELL_PROTOCOL) {
        release();
        return ws.close(1002, `ask for the ${SHELL_PROTOCOL} sub-protocol`);
      }
      deps.streams.add(ws, who);
      // Opening a shell is a change like any other: it is audited.
      deps.audit(auditEntry({ method: 'GET', route: 'shell', object: target.object }, who, 101));
      void serve(ws, target, deps).finally(release);
    });
  };
}

interface Target {
  ref: ContainerRef;
  size: ShellSize;
  /** What the shell was opened in, for the audit log. */
  object: string;
  /** Called when the shell ends (an agent with a shell open is not idle). */
  done: () => void;
}

function resolve(req: IncomingMessage, { jobs, agents }: ShellStreamDeps, principal: Principal): Target {
  const url = new URL(req.url ?? '/', 'http://hub');
  const [, kind, raw] = SHELL_PATH.exec(url.pathname)!;
  const name = decodeURIComponent(raw!);
  const given = url.searchParams.has('cols') || url.searchParams.has('rows');
  const size = given ? parseShellSize({ cols: Number(url.searchParams.get('cols')), rows: Number(url.searchParams.get('rows')) }) : DEFAULT_SIZE;
  if (kind === 'agents') {
    // Someone else's agent is answered as a missing one.
    const { ref, done } = agents.shellTarget(name, principal);
    return { ref, size, object: `agent ${name}`, done };
  }
  // Someone else's job is answered as a missing one; a privileged one needs the "privileged" scope.
  return { ref: jobs.shellTarget(name, principal), size, object: name, done: () => {} };
}

async function serve(ws: WebSocket, target: Target, { backend, log }: ShellStreamDeps): Promise<void> {
  // What the client types while the engine starts the shell is kept, not lost (up to HIGH_WATER, then the client waits).
  let session: ExecSession | undefined;
  const early: Buffer[] = [];
  let earlyBytes = 0;
  /** The shell's stdin is full: the client is not read until it drains. */
  let stdinFull = false;
  const onFrame = (data: Buffer) => {
    try {
      const { channel, body } = readShellFrame(data);
      if (channel === SHELL_CHANNEL.stdin) {
        // A shell that reads nothing must not make the hub hold what the client sends:
        // the client's socket is not read until stdin drains, so the bytes wait in the client.
        if (!session!.stream.write(body) && !stdinFull) {
          stdinFull = true;
          ws.pause();
          session!.stream.once('drain', () => {
            stdinFull = false;
            ws.resume();
          });
        }
      } else if (channel === SHELL_CHANNEL.resize) {
        const size = parseShellSize(JSON.parse(body.toString('utf8')));
        void session!.resize(size.cols, size.rows);
      } else throw new Error(`channel ${channel} is not one a client sends`);
    } catch (err) {
      log(`shell in ${target.ref.id.slice(0, 12)}: ${(err as Error).message}`);
      ws.close(1008, (err as Error).message.slice(0, 120));
    }
  };
  ws.on('message', (data: Buffer) => {
    if (session) return onFrame(data);
    early.push(data);
    earlyBytes += data.length;
    if (earlyBytes > HIGH_WATER) ws.pause();
  });
  // The client went away: hang up the terminal, which ends the shell.
  ws.on('close', () => session?.stream.destroy());
  try {
    session = await backend.exec(target.ref, { command: ['/bin/bash', '-l'], ...target.size });
  } catch (err) {
    ws.resume();
    ws.send(shellFrame(SHELL_CHANNEL.exit, { error: (err as Error).message }));
    return void ws.close(1011, 'the shell could not start');
  }
  const { stream } = session;
  if (ws.readyState !== ws.OPEN) return void stream.destroy();
  stream.on('data', (chunk: Buffer) => {
    // Each send's callback runs once its bytes left for the client: the terminal is read on when they have caught up.
    ws.send(shellFrame(SHELL_CHANNEL.output, chunk), () => {
      if (stream.isPaused() && ws.bufferedAmount < HIGH_WATER / 2) stream.resume();
    });
    if (ws.bufferedAmount > HIGH_WATER) stream.pause();
  });
  stream.on('error', () => {});
  for (const data of early.splice(0)) onFrame(data);
  if (!stdinFull) ws.resume();
  const exitCode = await session.exited;
  if (ws.readyState === ws.OPEN) {
    // Read the client again, so its answer to the close arrives.
    ws.resume();
    ws.send(shellFrame(SHELL_CHANNEL.exit, { exitCode }));
    ws.close(1000, 'shell ended');
  }
}

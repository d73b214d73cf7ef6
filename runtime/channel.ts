// The runtime's side of the runtime channel: one WebSocket to the hub that survives
// drops. Everything that must not be lost goes through an outbox, numbered with
// `n`, and stays there until the hub acknowledges it; after a reconnect the hub
// says what it already has and the rest is sent again, in order.
import { EventEmitter } from 'node:events';
import WebSocket from 'ws';
import type { DoneMessage, HubMessage, StepMessage } from '../schemas/types.gen.js';
import { encodeOutputFrame, type OutputStream } from '../schemas/agent-frame.js';
import { backoffDelay } from './backoff.js';

type Reliable = Omit<StepMessage, 'n'> | Omit<DoneMessage, 'n'>;

interface Pending {
  n: number;
  payload: Buffer | string;
  size: number;
}

export interface ChannelOptions {
  url: string;
  token: string;
  /** How long the hub may stay unreachable before the runtime gives up. */
  reconnectDeadlineMs: number;
  log: (msg: string) => void;
}

export class ChannelClosedError extends Error {}

/**
 * Events: `welcome` (the one-shot AgentTask, or undefined for a named agent; once),
 * `task` (a named agent's next AgentTask), `cancel` (reason), `drain` (outbox fell below
 * the low-water mark), `fatal` (Error: the hub refused us or stayed away too long).
 */
export class RuntimeChannel extends EventEmitter {
  static readonly HIGH_WATER = 8 * 1024 * 1024;
  static readonly LOW_WATER = 2 * 1024 * 1024;

  private ws?: WebSocket;
  private ready = false;
  private outbox: Pending[] = [];
  private outboxBytes = 0;
  private nextN = 1;
  private token: string;
  private attempt = 0;
  private disconnectedSince = Date.now();
  private welcomed = false;
  private stopped = false;

  constructor(private readonly opts: ChannelOptions) {
    super();
    this.token = opts.token;
  }

  connect(): void {
    if (this.stopped) return;
    // Uncompressed: the hub's socket never compresses, and an offer would only load zlib.
    const ws = new WebSocket(this.opts.url, { headers: { authorization: `Bearer ${this.token}` }, perMessageDeflate: false });
    this.ws = ws;
    ws.on('message', (data, isBinary) => {
      if (!isBinary) this.onHubMessage(JSON.parse(data.toString()) as HubMessage);
    });
    ws.on('unexpected-response', (_req, res) => {
      // 401/404/409: the hub will never take us back (token spent, job over).
      const fatal = res.statusCode !== undefined && res.statusCode < 500;
      this.opts.log(`hub refused the connection: HTTP ${res.statusCode}`);
      ws.terminate();
      if (fatal) this.fail(new ChannelClosedError(`hub refused the agent (HTTP ${res.statusCode})`));
    });
    ws.on('error', (err) => this.opts.log(`channel error: ${err.message}`));
    ws.on('close', (code, reason) => {
      if (this.ws !== ws) return;
      // 1000 and 4xxx come from the hub on purpose: the job is over or we are refused. Anything else is a drop.
      if (code === 1000 || (code >= 4000 && code < 5000)) {
        this.ready = false;
        return this.fail(new ChannelClosedError(`hub closed the channel: ${code} ${reason.toString() || ''}`.trim()));
      }
      if (this.ready) this.disconnectedSince = Date.now();
      this.ready = false;
      this.scheduleReconnect();
    });
  }

  /** What the runtime proves itself with now: its one-time token, then each welcome's session token. */
  get session(): string {
    return this.token;
  }

  /** Bytes waiting for the hub's acknowledgement. */
  get pendingBytes(): number {
    return this.outboxBytes;
  }

  send(msg: Reliable): void {
    const n = this.nextN++;
    this.enqueue({ n, payload: JSON.stringify({ ...msg, n }), size: 64 });
  }

  sendOutput(stream: OutputStream, step: number, data: Buffer): void {
    if (data.length === 0) return;
    const n = this.nextN++;
    this.enqueue({ n, payload: encodeOutputFrame({ stream, n, step, data }), size: data.length });
  }

  /** Fire-and-forget messages (health): dropped when not connected. */
  sendVolatile(msg: object): void {
    if (this.ready) this.ws!.send(JSON.stringify(msg));
  }

  /** Resolves once the hub has acknowledged everything sent so far. */
  flushed(): Promise<void> {
    if (this.outbox.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.outbox.length === 0) {
          this.off('acked', check);
          this.off('fatal', reject);
          resolve();
        }
      };
      this.on('acked', check);
      this.once('fatal', reject);
    });
  }

  close(): void {
    this.stopped = true;
    this.ws?.close(1000, 'done');
  }

  private enqueue(p: Pending): void {
    this.outbox.push(p);
    this.outboxBytes += p.size;
    if (this.ready) this.ws!.send(p.payload);
  }

  private onHubMessage(msg: HubMessage): void {
    switch (msg.t) {
      case 'welcome': {
        this.token = msg.session;
        this.attempt = 0;
        this.ready = true;
        this.dropAcked(msg.acked);
        for (const p of this.outbox) this.ws!.send(p.payload);
        if (!this.welcomed) {
          this.welcomed = true;
          this.emit('welcome', msg.task);
        }
        break;
      }
      case 'task':
        this.emit('task', msg.task);
        break;
      case 'ack':
        this.dropAcked(msg.n);
        break;
      case 'cancel':
        this.emit('cancel', msg.reason);
        break;
    }
  }

  private dropAcked(n: number): void {
    const wasHigh = this.outboxBytes >= RuntimeChannel.LOW_WATER;
    while (this.outbox.length && this.outbox[0]!.n <= n) {
      this.outboxBytes -= this.outbox.shift()!.size;
    }
    this.emit('acked');
    if (wasHigh && this.outboxBytes < RuntimeChannel.LOW_WATER) this.emit('drain');
  }

  private scheduleReconnect(): void {
    if (this.stopped) return;
    if (Date.now() - this.disconnectedSince > this.opts.reconnectDeadlineMs) {
      this.fail(new ChannelClosedError(`hub unreachable for ${this.opts.reconnectDeadlineMs} ms`));
      return;
    }
    const delay = backoffDelay(this.attempt++, { baseMs: 100, maxMs: 3000 });
    setTimeout(() => this.connect(), delay);
  }

  private fail(err: Error): void {
    if (this.stopped) return;
    this.stopped = true;
    this.emit('fatal', err);
  }
}

// The open streams (event streams, shells, live feeds, followed logs), by the
// principal that opened them: so a token that is revoked or runs out ends its
// streams too (at once when revoked through the API, within a second otherwise:
// revoked from the command line, or expired), and so no principal, nor all of them
// together, holds more than the hub's limits (each open stream holds a socket, a
// cursor over the store and a follower on the bus).
import { HubError } from '../platform/errors.js';
import type { Principal } from '../platform/principal.js';

/** An open stream: a WebSocket, or the dashboard's live feed. */
export interface Stream {
  close(code: number, reason: string): void;
  once(event: 'close', listener: () => void): unknown;
}

/** Close code of a stream whose token stopped working; the reason says which way. */
export const CLOSE_TOKEN_ENDED = 4401;
const SWEEP_MS = 1000;

export interface StreamLimits {
  /** Streams one principal may hold open (DOCKER_AGENT_MAX_STREAMS_PER_PRINCIPAL). */
  perPrincipal: number;
  /** Streams the hub holds open for everyone together (DOCKER_AGENT_MAX_STREAMS). */
  total: number;
}

export class StreamRegistry {
  private readonly open = new Map<Stream, Principal>();
  /** Streams admitted and not yet released, by principal id; `held` is their sum. */
  private readonly heldBy = new Map<string, number>();
  private held = 0;
  private timer?: NodeJS.Timeout;

  /** `stillValid` says why a principal may no longer act, or nothing. */
  constructor(
    private readonly stillValid: (p: Principal) => string | undefined,
    private readonly limits: StreamLimits,
  ) {}

  /**
   * Takes a slot for one more stream of `p`, before it opens, so a refusal is a plain
   * `429` naming the setting; the slot is held until the returned release is called
   * (calling it again does nothing).
   */
  admit(p: Principal): () => void {
    const mine = this.heldBy.get(p.id) ?? 0;
    if (mine >= this.limits.perPrincipal) {
      throw new HubError(
        'LIMIT_REACHED',
        `${p.label} has ${mine} streams open (event streams, shells, live feeds, followed logs), the most one principal may (DOCKER_AGENT_MAX_STREAMS_PER_PRINCIPAL=${this.limits.perPrincipal}); close one first`,
        { limit: 'DOCKER_AGENT_MAX_STREAMS_PER_PRINCIPAL', max: this.limits.perPrincipal },
      );
    }
    if (this.held >= this.limits.total) {
      throw new HubError(
        'LIMIT_REACHED',
        `the hub has ${this.held} streams open, the most it holds for all principals together (DOCKER_AGENT_MAX_STREAMS=${this.limits.total}); try again later`,
        { limit: 'DOCKER_AGENT_MAX_STREAMS', max: this.limits.total },
      );
    }
    this.heldBy.set(p.id, mine + 1);
    this.held++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.held--;
      const n = (this.heldBy.get(p.id) ?? 1) - 1;
      if (n > 0) this.heldBy.set(p.id, n);
      else this.heldBy.delete(p.id);
    };
  }

  add(ws: Stream, p: Principal): void {
    this.open.set(ws, p);
    ws.once('close', () => this.open.delete(ws));
    // Streams of principals that can end (a token, a session, an OIDC token's exp) are looked at every second.
    if ((p.tokenId || p.expiresAt) && !this.timer) {
      this.timer = setInterval(() => this.sweep(), SWEEP_MS);
      this.timer.unref();
    }
  }

  /** Ends the streams of a token that was just revoked. */
  closeToken(tokenId: string): void {
    for (const [ws, p] of this.open) if (p.tokenId === tokenId) this.end(ws, 'token revoked');
  }

  /** Ends the streams of a dashboard session that signed out. */
  closeSession(sessionId: string): void {
    for (const [ws, p] of this.open) if (p.sessionId === sessionId) this.end(ws, 'signed out');
  }

  private sweep(): void {
    let tokens = 0;
    for (const [ws, p] of this.open) {
      if (!p.tokenId && !p.expiresAt) continue;
      tokens++;
      const why = this.stillValid(p);
      if (why) this.end(ws, why);
    }
    if (!tokens) this.stop();
  }

  private end(ws: Stream, why: string): void {
    this.open.delete(ws);
    ws.close(CLOSE_TOKEN_ENDED, why.slice(0, 120));
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}

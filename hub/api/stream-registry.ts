// The open event streams, by the principal that opened them, so a token that is
// revoked or runs out ends its streams too: at once when revoked through the API,
// within a second otherwise (revoked from the command line, or expired).
import type { Principal } from '../platform/principal.js';

/** An open stream: a WebSocket, or the dashboard's live feed. */
export interface Stream {
  close(code: number, reason: string): void;
  once(event: 'close', listener: () => void): unknown;
}

/** Close code of a stream whose token stopped working; the reason says which way. */
export const CLOSE_TOKEN_ENDED = 4401;
const SWEEP_MS = 1000;

export class StreamRegistry {
  private readonly open = new Map<Stream, Principal>();
  private timer?: NodeJS.Timeout;

  /** `stillValid` says why a principal may no longer act, or nothing. */
  constructor(private readonly stillValid: (p: Principal) => string | undefined) {}

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

// The one place a runtime that dials in is known, for every kind of sandbox: its
// one-time token's hash until it first attaches, then its session secret's hash.
// Only hashes are kept, as in the store.
import { HubError } from '../platform/errors.js';
import { hashToken } from '../store/tokens.js';
import type { Sandbox, SandboxIndex } from './sandbox.js';
import type { RuntimeLink, RuntimeSession } from './runtime-link.js';

export class SandboxRegistry implements SandboxIndex {
  private readonly byHash = new Map<string, Sandbox>();
  private closed = false;
  /** False until the hub has taken up what a previous run left: until then an unknown secret may be one about to be adopted. */
  private opened = false;

  add(hash: string, sandbox: Sandbox): void {
    this.byHash.set(hash, sandbox);
  }

  remove(hash: string): void {
    this.byHash.delete(hash);
  }

  /** A runtime proved itself with a one-time token or a session secret: its sandbox takes the connection. */
  attach(token: string, link: RuntimeLink): RuntimeSession {
    const hash = hashToken(token);
    if (this.closed) throw new HubError('NOT_RUNNING', 'the hub is stopping; dial again');
    const sandbox = this.byHash.get(hash);
    if (!sandbox && !this.opened) throw new HubError('NOT_RUNNING', 'the hub is starting; dial again');
    if (!sandbox) throw new HubError('UNAUTHORIZED', 'unknown or spent agent token');
    return sandbox.attach(hash, link);
  }

  /**
   * Whether a runtime dialling with `token` may be let through the WebSocket
   * upgrade: false only for a token refused for good (unknown once the hub has
   * adopted what runs), so such a dial costs an HTTP answer, never a WebSocket.
   * While the hub starts or stops every token passes, to be told to dial again.
   */
  mayAttach(token: string): boolean {
    return this.closed || !this.opened || this.byHash.has(hashToken(token));
  }

  /** The archive the task of `token`'s runtime brings (GET /v1/agent/workspace). */
  workspace(token: string): string {
    const hash = hashToken(token);
    const archive = this.byHash.get(hash)?.workspaceFor(hash);
    if (!archive) throw new HubError('UNAUTHORIZED', 'no workspace for this agent token: it is not a current session, or its task brings no files');
    return archive;
  }

  /** The hub has adopted what still runs (after a restart): a secret it does not know now is refused for good. */
  open(): void {
    this.opened = true;
  }

  /** The hub is stopping: no runtime attaches any more (the next start adopts them). */
  close(): void {
    this.closed = true;
  }
}

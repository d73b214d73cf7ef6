// Shared pieces for WebSocket upgrades on the hub's HTTP servers.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { parseBearer } from '../auth/authenticator.js';
import type { HubError } from '../platform/errors.js';

export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

export function bearerToken(req: IncomingMessage): string | undefined {
  return parseBearer(req.headers.authorization);
}

/** Answers an upgrade request with a plain HTTP error, as the routes do. */
export function rejectUpgrade(socket: Duplex, err: HubError): void {
  const body = JSON.stringify(err.toJSON());
  socket.end(
    `HTTP/1.1 ${err.status} ${err.code}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/**
 * Calls `release` when the connection ends, whether or not its upgrade completed
 * (ws answers a bad handshake itself and never calls back); at once if it has
 * ended already (the client left while it was being authenticated).
 */
export function releaseOnClose(socket: Duplex, release: () => void): void {
  if (socket.destroyed) return release();
  socket.once('close', release);
}

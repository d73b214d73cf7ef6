import type { Context } from 'hono';
import { HubError } from '../platform/errors.js';

/** The request body as JSON, or a 400 that says why it is not. */
export async function readJson(c: Context): Promise<unknown> {
  const text = await c.req.text();
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new HubError('INVALID_JSON', `request body is not valid JSON: ${(err as Error).message}`);
  }
}

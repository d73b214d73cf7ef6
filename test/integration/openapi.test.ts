// GET /v1/openapi.json: valid OpenAPI 3.1 (checked by an OpenAPI validator), one
// entry for every route the hub serves and none it does not, and, fuzzed with
// fast-check against a real hub, every route answers generated valid and invalid
// input with no 5xx and errors in the documented shape.
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EVENTS_PATH } from '../../hub/api/event-stream.js';
import { ROUTES } from '../../hub/api/openapi.js';
import { SHELL_PATH } from '../../hub/api/shell-stream.js';
import { createApp, type AppDeps } from '../../hub/app.js';
import { startTestHub, TOKEN, type TestHub } from '../helpers/hub.js';

let t: TestHub;
let doc: { paths: Record<string, Record<string, unknown>>; components: { schemas: { Error: object } } };
beforeAll(async () => {
  t = await startTestHub();
  doc = (await (await fetch(`${t.hub.url}/v1/openapi.json`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as typeof doc;
});
afterAll(async () => {
  await t?.close();
});

describe('GET /v1/openapi.json', () => {
  it('is valid OpenAPI 3.1', async () => {
    const result = await new Validator().validate(doc as never);
    expect(result.errors ?? [], JSON.stringify(result.errors)).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it('describes every route the hub serves, and no other', () => {
    // The HTTP routes as the app registers them (middleware aside).
    const app = createApp({ links: { http: '', ws: '' } } as unknown as AppDeps);
    const served = app.routes.filter((r) => r.method !== 'ALL').map((r) => `${r.method.toLowerCase()} ${r.path.replace(/:(\w+)/g, '{$1}')}`);
    const websocket = ROUTES.filter((r) => r.websocket);
    const http = ROUTES.filter((r) => !r.websocket).map((r) => `${r.method} ${r.path}`);
    expect([...new Set(served)].sort()).toEqual([...http].sort());
    // The WebSocket routes as the server routes upgrades.
    for (const r of websocket) {
      const sample = r.path.replace(/\{\w+\}/g, 'x');
      expect(EVENTS_PATH.test(sample) || SHELL_PATH.test(sample), r.path).toBe(true);
    }
    expect(Object.keys(doc.paths).sort()).toEqual([...new Set(ROUTES.map((r) => r.path))].sort());
  });

  it('answers generated input on every route with no 5xx, and refusals in the documented error shape', async () => {
    const isError = new Ajv2020({ strict: false }).compile(doc.components.schemas.Error);
    const segment = fc.oneof(
      fc.constantFrom('x', '..', '%2F', 'a'.repeat(300), '00000000-0000-0000-0000-000000000000', 'my-agent'),
      fc.string({ maxLength: 40 }),
    );
    const body = fc.oneof(
      fc.jsonValue({ maxDepth: 3 }),
      fc.record({ run: fc.string(), profile: fc.string({ maxLength: 120 }), timeout: fc.oneof(fc.integer(), fc.double()) }, { requiredKeys: [] }),
      fc.record({ name: fc.string({ maxLength: 80 }), scopes: fc.array(fc.string({ maxLength: 12 })), expiresInDays: fc.double() }, { requiredKeys: [] }),
    );
    const query = fc.dictionary(fc.constantFrom('state', 'limit', 'cursor', 'tail', 'follow', 'keepVolume', 'strip', 'from'), fc.string({ maxLength: 20 }));
    for (const route of ROUTES.filter((r) => !r.websocket)) {
      await fc.assert(
        fc.asyncProperty(segment, body, query, async (seg, payload, q) => {
          const path = route.path.replace(/\{\w+\}/g, encodeURIComponent(seg));
          const qs = new URLSearchParams(q as Record<string, string>).toString();
          const res = await fetch(`${t.hub.url}${path}${qs ? `?${qs}` : ''}`, {
            method: route.method.toUpperCase(),
            headers: { authorization: `Bearer ${TOKEN}`, 'content-type': route.body?.type ?? 'application/json' },
            ...(route.method === 'get' ? {} : { body: JSON.stringify(payload) }),
            // Streams (logs with follow) are not read to their end.
            signal: AbortSignal.timeout(10_000),
          }).catch((err: Error) => ({ status: err.name === 'TimeoutError' ? 200 : 599, json: async () => ({}), body: null }) as unknown as Response);
          expect(res.status, `${route.method} ${path}?${qs}`).toBeLessThan(500);
          if (res.status >= 400) {
            const errorBody = await res.json();
            expect(isError(errorBody), `${route.method} ${path}: ${JSON.stringify(errorBody)}`).toBe(true);
          } else await res.body?.cancel();
          // Anything the fuzz happened to start ends here.
          for (const j of (await t.client.listJobs({ state: ['queued', 'preparing', 'starting', 'running'] })).jobs)
            await t.client.cancelJob(j.id).catch(() => {});
        }),
        { numRuns: 15 },
      );
    }
  });
});

// /v1/tokens: make, list and revoke API tokens. Admin only; a new token's secret
// is in the answer to its POST and nowhere else. Revoking ends the token's open
// event streams too.
import { Hono } from 'hono';
import { validationError } from '../platform/errors.js';
import type { TokenStore } from '../store/tokens.js';
import { createToken, revokeToken, tokenView } from '../auth/tokens.js';
import { validateTokenRequest } from '../platform/validation.js';
import { readJson } from './body.js';
import { needsScope, type HubEnv } from './env.js';

export function tokensRoutes(tokens: TokenStore, onRevoke: (tokenId: string) => void) {
  const app = new Hono<HubEnv>();
  app.use('*', needsScope('admin', 'managing tokens'));

  app.post('/', async (c) => {
    const parsed = validateTokenRequest(await readJson(c));
    if (!parsed.ok) throw validationError('token request', parsed.issues);
    return c.json(createToken(tokens, parsed.value, 'api'), 201);
  });

  app.get('/', (c) => c.json({ tokens: tokens.list().map(tokenView) }));

  app.delete('/:id', (c) => {
    const rec = revokeToken(tokens, c.req.param('id'), `revoked by ${c.get('principal').label}`);
    onRevoke(rec.id);
    return c.json(tokenView(rec));
  });
  return app;
}

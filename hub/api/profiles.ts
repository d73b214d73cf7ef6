// /v1/profiles: what profiles there are, one in full, and a check of a profile
// before it is saved into the profiles folder.
import { Hono } from 'hono';
import { HubError } from '../errors.js';
import type { ProfileRegistry } from '../profiles/registry.js';
import { validateProfile } from '../validation.js';
import { readJson } from './body.js';

export function profilesRoutes(profiles: ProfileRegistry, allowPrivileged: boolean) {
  const app = new Hono();
  const summary = (e: ReturnType<ProfileRegistry['list']>[number]) => ({
    name: e.profile.name,
    description: e.profile.description ?? null,
    source: e.source,
    privileged: e.profile.privileged === true,
    // A privileged profile is listed, but jobs may use it only where the hub allows it.
    usable: !e.profile.privileged || allowPrivileged,
  });

  app.get('/', (c) => c.json({ profiles: profiles.list().map(summary), problems: profiles.problems() }));

  app.get('/:name', (c) => {
    const e = profiles.entry(c.req.param('name'));
    if (!e) {
      throw new HubError('NOT_FOUND', `unknown profile ${JSON.stringify(c.req.param('name'))}; known profiles: ${profiles.names().join(', ')}`, {
        known: profiles.names(),
      });
    }
    return c.json({ ...summary(e), profile: e.profile });
  });

  app.post('/validate', async (c) => {
    const result = validateProfile(await readJson(c));
    return c.json(result.ok ? { valid: true, issues: [] } : { valid: false, issues: result.issues });
  });

  return app;
}

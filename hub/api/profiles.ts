// /v1/profiles: what profiles there are, one in full, and a check of a profile
// before it is saved into the profiles folder. Any principal that may run jobs reads
// them; what a profile puts into its containers (environment, files) and the
// problems of the operator's profile files are the admin's to see.
import { Hono } from 'hono';
import { HubError } from '../platform/errors.js';
import type { ProfileRegistry } from '../profiles/registry.js';
import { validateProfile } from '../platform/validation.js';
import { readJson } from './body.js';
import { needsScope, type HubEnv } from './env.js';
import { hasScope, isAdmin, type Principal } from '../platform/principal.js';

export function profilesRoutes(profiles: ProfileRegistry, allowPrivileged: boolean) {
  const app = new Hono<HubEnv>();
  app.use('*', needsScope('jobs', 'reading profiles'));
  const summary = (e: ReturnType<ProfileRegistry['list']>[number], p: Principal) => ({
    name: e.profile.name,
    description: e.profile.description ?? null,
    source: e.source,
    privileged: e.profile.privileged === true,
    // A privileged profile is listed, but only the hub's switch and the caller's scope together make it usable.
    usable: !e.profile.privileged || (allowPrivileged && hasScope(p, 'privileged')),
  });

  app.get('/', (c) => {
    const p = c.get('principal');
    return c.json({ profiles: profiles.list().map((e) => summary(e, p)), problems: isAdmin(p) ? profiles.problems() : [] });
  });

  app.get('/:name', (c) => {
    const e = profiles.entry(c.req.param('name'));
    if (!e) {
      throw new HubError('NOT_FOUND', `unknown profile ${JSON.stringify(c.req.param('name'))}; known profiles: ${profiles.names().join(', ')}`, {
        known: profiles.names(),
      });
    }
    const p = c.get('principal');
    // A profile's env and files may hold what the operator gives its containers (a registry mirror's credentials, a CA).
    const { environment: _env, files: _files, ...shown } = e.profile;
    return c.json({ ...summary(e, p), profile: isAdmin(p) ? e.profile : shown });
  });

  app.post('/validate', async (c) => {
    const result = validateProfile(await readJson(c));
    return c.json(result.ok ? { valid: true, issues: [] } : { valid: false, issues: result.issues });
  });

  return app;
}

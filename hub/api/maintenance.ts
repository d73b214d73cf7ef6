// POST /v1/maintenance/prune: what a scheduled maintenance job asks for. Removes
// ended jobs (with their events), profile images, snapshots and uploaded
// workspaces past their age or size limits, and containers no job owns; says what
// it removed (or would, with dryRun).
import { Hono } from 'hono';
import { z } from 'zod';
import { validationError } from '../platform/errors.js';
import type { ProfileRegistry } from '../profiles/registry.js';
import type { Backend } from '../backend/types.js';
import type { JobStore } from '../store/jobs.js';
import type { WorkspaceStore } from '../workspaces/uploads.js';
import { readJson } from './body.js';
import type { HubEnv } from './env.js';
import { requireScope } from '../platform/principal.js';
import type { WorkspaceOwners } from '../store/workspace-owners.js';
import type { Snapshots } from '../snapshots/snapshots.js';

const PruneRequest = z.strictObject({
  /** Ended jobs older than this many seconds go. */
  jobsOlderThan: z
    .number()
    .min(0)
    .default(30 * 86400),
  /** …but the newest this many ended jobs always stay. */
  keepJobs: z.number().int().min(0).default(100),
  /** Images of no current profile, older than this many seconds, go. */
  imagesOlderThan: z
    .number()
    .min(0)
    .default(7 * 86400),
  /** …and the oldest of them beyond this many bytes in all. */
  maxImageBytes: z
    .number()
    .min(0)
    .default(20 * 1024 ** 3),
  /** Snapshots older than this many seconds go… */
  snapshotsOlderThan: z
    .number()
    .min(0)
    .default(7 * 86400),
  /** …and the oldest beyond this many bytes in all. */
  maxSnapshotBytes: z
    .number()
    .min(0)
    .default(20 * 1024 ** 3),
  /** Uploaded workspaces not used for this many seconds go. */
  workspacesOlderThan: z.number().min(0).default(86400),
  reapContainers: z.boolean().default(true),
  dryRun: z.boolean().default(false),
});

export interface MaintenanceDeps {
  reapOrphans: (dryRun: boolean) => Promise<string[]>;
  store: JobStore;
  backend: Backend;
  profiles: ProfileRegistry;
  workspaces: WorkspaceStore;
  workspaceOwners: WorkspaceOwners;
  /** Their records go with the images pruned. */
  snapshots: Snapshots;
  hubId: string;
}

export function maintenanceRoutes({ reapOrphans, store, backend, profiles, workspaces, workspaceOwners, snapshots: snapshotRecords, hubId }: MaintenanceDeps) {
  const app = new Hono<HubEnv>();
  app.post('/prune', async (c) => {
    // It removes every principal's jobs, snapshots and uploads: admin only.
    requireScope(c.get('principal'), 'admin', 'pruning');
    const parsed = PruneRequest.safeParse(await readJson(c));
    if (!parsed.success) {
      throw validationError(
        'prune request',
        parsed.error.issues.flatMap((i) =>
          i.code === 'unrecognized_keys'
            ? i.keys.map((k) => ({ path: `/${k}`, message: 'is not a known field' }))
            : [{ path: `/${i.path.join('/')}`, message: i.message }],
        ),
      );
    }
    const o = parsed.data;
    const now = Date.now();
    const removedJobs = store.pruneEnded(new Date(now - o.jobsOlderThan * 1000).toISOString(), o.keepJobs, o.dryRun);
    // The images profiles use now are kept, whatever their age.
    const current = new Set<string>();
    for (const p of profiles.list()) current.add(await backend.imageFor(p.profile).catch(() => ''));
    const images = await backend.pruneImages({
      keep: current,
      olderThan: new Date(now - o.imagesOlderThan * 1000),
      maxBytes: o.maxImageBytes,
      dryRun: o.dryRun,
    });
    const containers = o.reapContainers ? await reapOrphans(o.dryRun) : [];
    const snapshots = await backend.pruneSnapshots({
      hubId,
      olderThan: new Date(now - o.snapshotsOlderThan * 1000),
      maxBytes: o.maxSnapshotBytes,
      dryRun: o.dryRun,
    });
    if (!o.dryRun) snapshotRecords.forgetImages(snapshots);
    const uploads = workspaces.prune(new Date(now - o.workspacesOlderThan * 1000), o.dryRun);
    if (!o.dryRun) workspaceOwners.forget(uploads);
    return c.json({ dryRun: o.dryRun, removed: { jobs: removedJobs, images, containers, snapshots, workspaces: uploads } });
  });
  return app;
}

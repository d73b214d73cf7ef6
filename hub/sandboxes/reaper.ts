// Removes this hub's containers that nothing holds: after a restart, and on an
// operator's request (POST /v1/maintenance). What holds a container is asked of the
// hub's records (jobs, the pool, named agents), never of the labels alone, which a
// snapshot's image may have passed on.
import type { Backend, ContainerInfo } from '../backend/types.js';

export interface ReaperDeps {
  backend: Backend;
  hubId: string;
  log: (msg: string) => void;
  /** Whether something of the hub's holds the container. */
  holds(c: ContainerInfo): boolean;
}

/** Removes (unless `dryRun`) the containers nothing holds; returns their ids. */
export async function reapOrphans(deps: ReaperDeps, dryRun: boolean, containers?: ContainerInfo[]): Promise<string[]> {
  const { backend, hubId, log } = deps;
  const orphans = (containers ?? (await backend.list(hubId))).filter((c) => !deps.holds(c));
  if (!dryRun) {
    for (const c of orphans) {
      log(`removing container ${c.id.slice(0, 12)}: nothing of this hub's holds it`);
      await backend.destroy(c).catch((err: Error) => log(`removing ${c.id.slice(0, 12)} failed: ${err.message}`));
    }
  }
  return orphans.map((c) => c.id);
}

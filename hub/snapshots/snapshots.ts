// Snapshots as their owners see them: listed, downloaded, deleted, and the image a
// new agent or job starts from. Someone else's is a 404 like a missing one.
import type { SnapshotView } from '../../schemas/types.gen.js';
import type { Backend } from '../backend/types.js';
import { HubError } from '../platform/errors.js';
import type { Links } from '../platform/links.js';
import { canSee, isAdmin, type Principal } from '../platform/principal.js';
import type { Snapshot, SnapshotStore } from '../store/snapshots.js';
import type { StorageBudget } from '../store/storage-budget.js';

export class Snapshots {
  constructor(
    private readonly store: SnapshotStore,
    private readonly backend: Backend,
    private readonly links: Links,
    private readonly budget: StorageBudget,
  ) {}

  /** Keeps a snapshot just taken, if its owner has room for its bytes; else its image goes and LIMIT_REACHED says why. */
  record(s: Omit<Snapshot, 'createdAt'>): Snapshot {
    if (s.owner) {
      try {
        this.budget.check(s.owner, s.owner, s.bytes, 'a snapshot');
      } catch (err) {
        void this.backend.removeImage(s.image).catch(() => {});
        throw err;
      }
    }
    return this.store.add(s);
  }

  /** Drops the records of snapshots whose images maintenance removed (by their image tags). */
  forgetImages(images: string[]): void {
    for (const image of images) this.store.removeByImage(image);
  }

  /** Drops the record of a snapshot whose image the hub removes itself (one taken after its job was cancelled). */
  forget(id: string): void {
    this.store.remove(id);
  }

  /** LIMIT_REACHED when the principal keeps `max` snapshots already (each holds disk until deleted). */
  checkRoom(principal: Principal, max: number): void {
    this.checkRoomOf(principal.id, principal.label, max);
  }

  /** As checkRoom, for an owner known by its id (a job's, when its snapshot is committed). */
  checkRoomOf(owner: string, label: string, max: number): void {
    const kept = this.store.list(owner).length;
    if (kept >= max) {
      throw new HubError(
        'LIMIT_REACHED',
        `${label} keeps ${kept} snapshots, the most this hub allows per principal (DOCKER_AGENT_MAX_SNAPSHOTS_PER_PRINCIPAL=${max}); delete one first`,
        {
          limit: 'DOCKER_AGENT_MAX_SNAPSHOTS_PER_PRINCIPAL',
          max,
        },
      );
    }
  }

  get(id: string, principal: Principal): Snapshot {
    const s = this.store.get(id);
    if (!s || !canSee(principal, s.owner)) throw new HubError('NOT_FOUND', `no snapshot ${id}`, undefined, s ? { foreign: true } : undefined);
    return s;
  }

  list(principal: Principal): Snapshot[] {
    return this.store.list(isAdmin(principal) ? undefined : principal.id);
  }

  /** The image to start from, for `from: {snapshot}`. */
  imageOf(id: string, principal: Principal): string {
    return this.get(id, principal).image;
  }

  async remove(id: string, principal: Principal): Promise<void> {
    const s = this.get(id, principal);
    await this.backend.removeImage(s.image);
    this.store.remove(id);
  }

  archive(id: string, principal: Principal, opts: { full?: boolean } = {}): Promise<NodeJS.ReadableStream> {
    return this.backend.exportImage(this.get(id, principal).image, opts);
  }

  view(s: Snapshot): SnapshotView {
    return { ...s, url: `${this.links.http}/v1/snapshots/${s.id}/archive` };
  }
}

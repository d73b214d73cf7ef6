// What a container may write, where the engine has no quota for it (overlay2 on
// ext4): every few seconds the hub asks the engine how much each running sandbox's
// container has written to its own file system, and one past the limit is told to
// its holder, which ends its work with DISK_LIMIT. One inspect per container per
// round, one round at a time; a round the engine fails is logged and the next tries again.
import type { Backend, ContainerRef } from '../backend/types.js';

/** A sandbox as the watch sees it: its container, and whom to tell. */
export interface Watched {
  readonly ref?: ContainerRef;
  readonly label: string;
  overDisk(message: string): void;
}

export interface DiskWatchDeps {
  backend: Pick<Backend, 'writableBytes'>;
  /** Bytes a container may write (DOCKER_AGENT_MAX_DISK_BYTES). */
  limit: number;
  intervalMs: number;
  log: (msg: string) => void;
}

export class DiskWatch {
  private readonly watched = new Set<Watched>();
  private timer?: NodeJS.Timeout;
  private round?: Promise<void>;

  constructor(private readonly deps: DiskWatchDeps) {}

  add(w: Watched): void {
    this.watched.add(w);
    if (!this.timer) {
      this.timer = setInterval(() => {
        this.round ??= this.check().finally(() => (this.round = undefined));
      }, this.deps.intervalMs);
      this.timer.unref();
    }
  }

  delete(w: Watched): void {
    this.watched.delete(w);
    if (this.watched.size === 0) this.stop();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One round: each watched container's writable size against the limit. Never rejects. */
  async check(): Promise<void> {
    const { backend, limit, log } = this.deps;
    for (const w of [...this.watched]) {
      if (!w.ref || !this.watched.has(w)) continue;
      try {
        const bytes = await backend.writableBytes(w.ref);
        if (bytes === undefined || bytes <= limit || !this.watched.has(w)) continue;
        this.watched.delete(w);
        w.overDisk(
          `the container wrote ${bytes} bytes to its file system; a container may write at most ${limit} (DOCKER_AGENT_MAX_DISK_BYTES): write less, or ask the operator for a higher limit`,
        );
      } catch (err) {
        log(`${w.label}: the disk watch could not read its container's size: ${(err as Error).message}`);
      }
    }
  }
}

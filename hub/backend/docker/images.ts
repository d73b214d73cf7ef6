// Builds a profile's image once: tagged by a hash of everything that goes into it
// (the base image's id, the Dockerfile, the context files), so an unchanged
// profile is never rebuilt, a changed one always is, and jobs that want the same
// image at the same time share one build.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type Docker from 'dockerode';
import { pack } from 'tar-stream';
import type { Profile } from '../../../schemas/types.gen.js';
import { HubError } from '../../platform/errors.js';
import type { BuildProgress } from '../types.js';
import { dockerfileFor, type BuildContext, type FileRef } from './dockerfile.js';

export function contentTag(profile: Profile, baseId: string, ctx: BuildContext): string {
  const h = createHash('sha256').update(baseId).update('\0').update(ctx.dockerfile);
  for (const [name, content] of [...ctx.files].sort(([a], [b]) => a.localeCompare(b))) {
    h.update('\0')
      .update(name)
      .update('\0')
      .update(typeof content === 'object' && 'digest' in content ? content.digest : content);
  }
  return `docker-agent/${profile.name}:${h.digest('hex').slice(0, 16)}`;
}

const FIXED_MTIME = new Date(0);

function contextTar(ctx: BuildContext): NodeJS.ReadableStream {
  const tar = pack();
  tar.entry({ name: 'Dockerfile' }, ctx.dockerfile);
  for (const [name, content] of ctx.files) {
    const ref = typeof content === 'object' && 'digest' in content ? content : undefined;
    // A fixed mtime: COPY keeps it, so the same file is the same layer in every image, even built side by side (no cache hit).
    tar.entry({ name, mtime: FIXED_MTIME, ...(ref ? { mode: 0o755 } : {}) }, ref ? readFileSync(ref.file) : (content as string | Buffer));
  }
  tar.finalize();
  return tar as unknown as NodeJS.ReadableStream;
}

interface BuildMessage {
  stream?: string;
  error?: string;
  errorDetail?: { message?: string };
}

/**
 * How old the last look at a profile's image may be before a job's start looks
 * again (in the background: the job starts from the image found last).
 */
const RECHECK_MS = 2000;

export class ImageBuilder {
  private readonly inFlight = new Map<string, Promise<string>>();
  /**
   * The image each profile was last found in. Looking costs two engine calls and
   * hashing the runtime and the context (~20-60 ms of every cold start); a profile
   * edited on disk is a new object, so it is never served an old image.
   */
  private readonly found = new WeakMap<Profile, { tag: string; at: number }>();

  constructor(
    private readonly docker: Docker,
    private readonly baseImage: string,
    private readonly runtime: () => Buffer,
    private readonly node: () => FileRef,
    private readonly extraCerts: () => Map<string, Buffer> = () => new Map(),
    /** Told of each image built (not found cached), with its profile and seconds. */
    private readonly onBuilt: (profile: string, seconds: number) => void = () => {},
  ) {}

  /** The tag a profile's image has (built or not) and what building it takes. */
  async plan(profile: Profile): Promise<{ tag: string; ctx: BuildContext }> {
    const base = profile.base ?? this.baseImage;
    let baseId: string;
    try {
      baseId = (await this.docker.getImage(base).inspect()).Id;
    } catch {
      throw new HubError(
        'IMAGE_BUILD_FAILED',
        `base image ${base} of profile ${profile.name} is not on the engine (no registry is used: build or load it first; \`npm start\` builds the default one)`,
      );
    }
    const ctx = dockerfileFor(profile, base, this.runtime(), this.node(), this.extraCerts());
    return { tag: contentTag(profile, baseId, ctx), ctx };
  }

  async ensure(profile: Profile, told: (p: BuildProgress) => void = () => {}): Promise<string> {
    // Progress is told from the build's stream handlers: a listener that throws (its store's disk is full) must not end the build, or the process.
    const onProgress = (p: BuildProgress) => {
      try {
        told(p);
      } catch {
        // Progress is expendable.
      }
    };
    const last = this.found.get(profile);
    if (!last) return this.lookUp(profile, onProgress);
    if (Date.now() - last.at > RECHECK_MS) {
      last.at = Date.now();
      // A new base or runtime gives a new tag, built here while jobs go on starting from the last one.
      void this.lookUp(profile, () => {}).catch(() => this.found.delete(profile));
    }
    return last.tag;
  }

  private async lookUp(profile: Profile, onProgress: (p: BuildProgress) => void): Promise<string> {
    const tag = await this.buildOnce(profile, onProgress);
    this.found.set(profile, { tag, at: Date.now() });
    return tag;
  }

  private async buildOnce(profile: Profile, onProgress: (p: BuildProgress) => void): Promise<string> {
    const { tag, ctx } = await this.plan(profile);
    const running = this.inFlight.get(tag);
    if (running) {
      onProgress({ message: `waiting for the build of ${tag} already under way` });
      return running;
    }
    const build = this.buildIfMissing(tag, ctx, onProgress, profile.name).finally(() => this.inFlight.delete(tag));
    this.inFlight.set(tag, build);
    return build;
  }

  private async buildIfMissing(tag: string, ctx: BuildContext, onProgress: (p: BuildProgress) => void, profile: string): Promise<string> {
    try {
      await this.docker.getImage(tag).inspect();
      return tag;
    } catch {
      // not built yet
    }
    onProgress({ message: `building image ${tag}` });
    const t0 = performance.now();
    await runBuild(this.docker, contextTar(ctx), tag, onProgress);
    this.onBuilt(profile, (performance.now() - t0) / 1000);
    return tag;
  }
}

/** Builds an image from a context tar, reporting its steps; IMAGE_BUILD_FAILED with the build's last lines when it fails. */
export async function runBuild(docker: Docker, context: NodeJS.ReadableStream, tag: string, onProgress: (p: BuildProgress) => void = () => {}): Promise<void> {
  const stream = await docker.buildImage(context, { t: tag, rm: true, forcerm: true });
  const tail: string[] = [];
  await new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(
      stream,
      (err: Error | null, output: BuildMessage[]) => {
        const failed = err?.message ?? output.find((m) => m.error)?.error;
        if (failed) {
          reject(
            new HubError('IMAGE_BUILD_FAILED', `building ${tag} failed: ${failed.trim()}`, {
              output: tail.join('').slice(-4000),
            }),
          );
        } else resolve();
      },
      (m: BuildMessage) => {
        if (!m.stream) return;
        tail.push(m.stream);
        if (tail.length > 200) tail.shift();
        const step = /^Step (\d+)\/(\d+) : (.*)/.exec(m.stream);
        if (step) onProgress({ message: step[3]!.slice(0, 200), current: Number(step[1]), total: Number(step[2]) });
      },
    );
  });
}

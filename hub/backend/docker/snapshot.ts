// A named agent's snapshot: its container committed and its /workspace volume
// folded into the image, because `docker commit` leaves volumes out. A new agent
// from the snapshot gets the files in a fresh volume (the engine fills an empty
// named volume from the image on first mount); a job from it sees them in place.
import type Docker from 'dockerode';
import { createReadStream, createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { extract, pack } from 'tar-stream';
import { HubError } from '../../platform/errors.js';
import { runBuild } from './images.js';
import { SNAPSHOT_REPO, type ContainerRef } from '../types.js';

/** Commits a job's container (running or stopped) as `docker-agent/snapshot:<job>`, refused past `maxBytes` of change. */
export async function commitJob(docker: Docker, ref: ContainerRef, maxBytes: number | undefined): Promise<{ image: string; bytes: number }> {
  const image = `${SNAPSHOT_REPO}:${ref.jobId}`;
  if (maxBytes !== undefined) {
    // Measured before committing, so a job that wrote too much never costs the disk a second copy
    // (the engine takes ?size=1; the typings do not know it).
    const { SizeRw = 0 } = (await docker.getContainer(ref.id).inspect({ size: true } as Docker.ContainerInspectOptions)) as { SizeRw?: number };
    if (SizeRw > maxBytes) {
      throw new HubError(
        'SNAPSHOT_TOO_LARGE',
        `no snapshot: the job changed ${SizeRw} bytes of files; snapshots are limited to ${maxBytes} (DOCKER_AGENT_MAX_SNAPSHOT_BYTES)`,
      );
    }
  }
  // pause: a container still running is frozen while its files are read, so the image is consistent.
  await docker.getContainer(ref.id).commit({ repo: SNAPSHOT_REPO, tag: ref.jobId, pause: true, comment: `docker-agent job ${ref.jobId}` });
  const info = await docker.getImage(image).inspect();
  return { image, bytes: info.Size };
}

export async function snapshotWithWorkspace(
  docker: Docker,
  containerId: string,
  o: { tag: string; owner: { uid: number; gid: number }; maxBytes?: number; comment: string },
): Promise<void> {
  const container = docker.getContainer(containerId);
  const dir = mkdtempSync(join(tmpdir(), 'da-snap-'));
  const workspaceTar = join(dir, 'workspace.tar');
  // Frozen while both are read, so the image and /workspace agree.
  await container.pause();
  let base: string;
  try {
    base = ((await container.commit({ pause: false, comment: o.comment })) as { Id: string }).Id;
    let bytes = 0;
    const limit = new Transform({
      transform(chunk: Buffer, _enc, done) {
        bytes += chunk.length;
        if (o.maxBytes !== undefined && bytes > o.maxBytes) {
          done(new HubError('SNAPSHOT_TOO_LARGE', `no snapshot: /workspace holds more than ${o.maxBytes} bytes (DOCKER_AGENT_MAX_SNAPSHOT_BYTES)`));
        } else done(null, chunk);
      },
    });
    await pipeline(await container.getArchive({ path: '/workspace' }), limit, createWriteStream(workspaceTar));
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  } finally {
    await container.unpause().catch(() => {});
  }
  try {
    // The build context: a Dockerfile and the archive's `workspace/…` entries as they came.
    const context = pack();
    context.entry({ name: 'Dockerfile' }, `FROM ${base}\nCOPY --chown=${o.owner.uid}:${o.owner.gid} workspace/ /workspace/\n`);
    const entries = extract();
    entries.on('entry', (header, stream, next) => {
      stream.pipe(context.entry(header, next));
    });
    entries.on('finish', () => context.finalize());
    entries.on('error', (err) => context.destroy(err));
    createReadStream(workspaceTar).pipe(entries);
    await runBuild(docker, context as unknown as NodeJS.ReadableStream, o.tag);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

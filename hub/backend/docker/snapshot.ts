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

// Snapshots: a job that asks for one has its container committed to an image when
// its steps end; the image holds what the job left behind, is downloadable in
// `docker save` format, and goes when maintenance prunes snapshots.
import * as tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, docker, finalState, startTestHub, type TestHub } from '../helpers/hub.js';

let t: TestHub;
beforeAll(async () => {
  t = await startTestHub();
});
afterAll(async () => {
  await t?.close();
});

/** What a command prints in a fresh container of the image. */
async function runIn(image: string, cmd: string[]): Promise<string> {
  const c = await docker.createContainer({ Image: image, Cmd: cmd, Entrypoint: [], NetworkDisabled: true });
  try {
    await c.start();
    await c.wait();
    const logs = (await c.logs({ stdout: true, stderr: true })) as unknown as Buffer;
    // Each frame of a non-TTY log has an 8-byte header.
    let out = '';
    for (let i = 0; i < logs.length;) {
      const size = logs.readUInt32BE(i + 4);
      out += logs.subarray(i + 8, i + 8 + size).toString();
      i += 8 + size;
    }
    return out;
  } finally {
    await c.remove({ force: true });
  }
}

describe('snapshots', () => {
  it('commit the container when the steps end, even failed ones, keeping what the job made', async () => {
    const job = await t.client.createJob({ run: 'echo "built by the job" > artifact.txt; exit 2', snapshot: true });
    const events = await collect(t.client, job.id);
    expect(finalState(events)).toBe('failed');
    const states = events.flatMap((e) => (e.type === 'status' ? [e.state] : []));
    expect(states.slice(-2)).toEqual(['snapshotting', 'failed']);
    const snap = events.find((e) => e.type === 'snapshot');
    expect(snap).toMatchObject({ image: `docker-agent/snapshot:${job.id}`, url: `${t.hub.url}/v1/jobs/${job.id}/snapshot` });
    const view = await t.client.getJob(job.id);
    expect(view.snapshot).toEqual({ image: `docker-agent/snapshot:${job.id}`, bytes: expect.any(Number), url: `${t.hub.url}/v1/jobs/${job.id}/snapshot` });
    expect(await runIn(view.snapshot!.image, ['cat', '/workspace/artifact.txt'])).toBe('built by the job\n');

    // Downloadable as `docker save` output: its manifest names the image.
    const extract = tar.extract();
    (await t.client.downloadSnapshot(job.id)).pipe(extract);
    let manifest: Array<{ RepoTags: string[] }> | undefined;
    for await (const entry of extract) {
      if (entry.header.name === 'manifest.json') {
        let text = '';
        for await (const c of entry) text += c;
        manifest = JSON.parse(text);
      } else entry.resume();
    }
    expect(manifest?.[0]?.RepoTags).toEqual([`docker-agent/snapshot:${job.id}`]);

    // Maintenance keeps it while it is young and within the size limit, removes it beyond that,
    // and the download then says why there is nothing.
    const limits = { jobsOlderThan: 1e9, imagesOlderThan: 1e9, maxImageBytes: 1e15, reapContainers: false, snapshotsOlderThan: 1e9 };
    expect((await t.client.prune({ ...limits, maxSnapshotBytes: 1e15 })).removed.snapshots).toEqual([]);
    const { removed } = await t.client.prune({ ...limits, maxSnapshotBytes: 0 });
    expect(removed.snapshots).toContain(`docker-agent/snapshot:${job.id}`);
    await expect(docker.getImage(view.snapshot!.image).inspect()).rejects.toMatchObject({ statusCode: 404 });
    await expect(t.client.downloadSnapshot(job.id)).rejects.toMatchObject({ status: 404, message: expect.stringMatching(/is gone from the engine/) });
  });

  it('download as only the layers the job added, which docker load turns back into the same image where the base is', async () => {
    const job = await t.client.createJob({ run: 'head -c 3000000 /dev/urandom > blob; echo kept > note.txt', snapshot: true });
    expect(finalState(await collect(t.client, job.id))).toBe('succeeded');
    const image = `docker-agent/snapshot:${job.id}`;
    const imageId = (await docker.getImage(image).inspect()).Id;
    const bytesOf = async (full: boolean) => {
      let n = 0;
      const names: string[] = [];
      let base = '';
      const extract = tar.extract();
      (await t.client.downloadSnapshot(job.id, { full })).pipe(extract);
      for await (const entry of extract) {
        names.push(entry.header.name);
        for await (const c of entry) {
          n += (c as Buffer).length;
          if (entry.header.name === 'docker-agent-base.json') base += c;
        }
      }
      return { n, names, base };
    };
    // A reader that goes away mid-download leaves the hub serving (and the next download whole).
    const partial = await t.client.downloadSnapshot(job.id);
    for await (const chunk of partial) {
      expect((chunk as Buffer).length).toBeGreaterThan(0);
      break;
    }
    partial.destroy();
    expect((await t.client.health()).status).toBe('ok');
    const layers = await bytesOf(false);
    const full = await bytesOf(true);
    // The change is ~3 MB; the base image is hundreds of MB.
    expect(layers.n).toBeLessThan(full.n / 10);
    expect(layers.n).toBeGreaterThan(3_000_000);
    expect(layers.names).toContain('docker-agent-base.json');
    expect(layers.names).toContain('manifest.json');
    // Named by id, with every layer it shares with the job's image, each left out of the archive.
    const profileImage = await docker.getImage((await docker.getImage(image).inspect()).Parent).inspect();
    expect(JSON.parse(layers.base)).toEqual({ image: profileImage.Id, tags: profileImage.RepoTags, layers: profileImage.RootFS.Layers });

    // Loaded back (the base is on this engine): the same image id, with the job's files.
    const archive: Buffer[] = [];
    for await (const c of await t.client.downloadSnapshot(job.id)) archive.push(c as Buffer);
    await docker.getImage(image).remove();
    await new Promise<void>((resolve, reject) => {
      docker.loadImage(Buffer.concat(archive) as never, {}, (err, stream) => {
        if (err || !stream) return reject(err ?? new Error('docker load gave no answer'));
        docker.modem.followProgress(stream, (e: Error | null) => (e ? reject(e) : resolve()));
      });
    });
    expect((await docker.getImage(image).inspect()).Id).toBe(imageId);
    expect(await runIn(image, ['cat', '/workspace/note.txt'])).toBe('kept\n');
  });

  it('are not made unless asked for, and the download says so', async () => {
    const job = await t.client.createJob({ run: 'true' });
    const events = await collect(t.client, job.id);
    expect(events.some((e) => e.type === 'snapshot' || (e.type === 'status' && e.state === 'snapshotting'))).toBe(false);
    await expect(t.client.downloadSnapshot(job.id)).rejects.toMatchObject({
      status: 404,
      message: expect.stringMatching(/was not asked for one \(snapshot: true\)/),
    });
  });
});

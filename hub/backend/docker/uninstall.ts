// What `docker-agent-hub uninstall` removes of one hub on its engine and host: its
// containers, its job network and the packet filter rules for that network's bridge,
// and when asked its snapshot images and named agents' volumes. Profile images are
// shared by every hub on the engine and stay (`docker image prune` takes them).
import { LABELS } from '../types.js';
import { connectDocker } from './connect.js';
import { removeJobNetwork } from './network.js';

export interface UninstallReport {
  containers: number;
  network: boolean;
  rules: number;
  images: number;
  volumes: number;
  /** What could not be removed, and why; the rest was. */
  problems: string[];
}

export async function uninstallHub(hubId: string, opts: { images: boolean; volumes: boolean }): Promise<UninstallReport> {
  const { docker } = await connectDocker();
  const mine = { label: [`${LABELS.hub}=${hubId}`] };
  const problems: string[] = [];
  // One thing that will not go does not keep the others; one already gone is not a problem.
  const removed = (what: string, p: Promise<unknown>): Promise<boolean> =>
    p.then(
      () => true,
      (err: { statusCode?: number; message?: string }) => {
        if (err.statusCode !== 404) problems.push(`${what}: ${err.message ?? String(err)}`);
        return false;
      },
    );
  let containers = 0;
  for (const c of await docker.listContainers({ all: true, filters: mine })) {
    if (await removed(`container ${c.Names[0] ?? c.Id}`, docker.getContainer(c.Id).remove({ force: true }))) containers++;
  }
  let images = 0;
  if (opts.images) {
    // A snapshot is committed from a job's container, so it carries the container's hub label; newest first, as a
    // snapshot of a job that started from another is that one's child.
    const found = (await docker.listImages({ filters: mine })).sort((a, b) => b.Created - a.Created);
    for (const img of found) if (await removed(`image ${img.RepoTags?.[0] ?? img.Id}`, docker.getImage(img.Id).remove({ force: true }))) images++;
  }
  let volumes = 0;
  if (opts.volumes) {
    for (const v of (await docker.listVolumes({ filters: mine })).Volumes ?? []) {
      if (await removed(`volume ${v.Name}`, docker.getVolume(v.Name).remove())) volumes++;
    }
  }
  let gone = { network: false, rules: 0 };
  await removed(
    'the job network',
    removeJobNetwork(docker, hubId, process.getuid?.() === 0).then((r) => (gone = r)),
  );
  return { containers, ...gone, images, volumes, problems };
}

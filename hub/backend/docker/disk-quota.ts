// Whether the engine can cap a container's writable layer (HostConfig.StorageOpt
// size): overlay2 on xfs mounted with pquota, btrfs and zfs can; overlay2 on ext4
// cannot, and the engine refuses such a container when it is created. Asked once,
// by creating (never starting) one container with the limit and removing it.
import type Docker from 'dockerode';

export async function supportsDiskQuota(docker: Docker, image: string, bytes: number): Promise<boolean> {
  let container: Docker.Container | undefined;
  try {
    container = await docker.createContainer({
      Image: image,
      Cmd: ['true'],
      Labels: { 'docker-agent.probe': 'disk-quota' },
      HostConfig: { StorageOpt: { size: String(bytes) }, NetworkMode: 'none' },
    });
    return true;
  } catch {
    // Refused ("--storage-opt is supported only for overlay over xfs with 'pquota' mount option"), or no image to try
    // with: either way no quota is known to work, and the hub watches sizes itself.
    return false;
  } finally {
    await container?.remove({ force: true }).catch(() => {});
  }
}

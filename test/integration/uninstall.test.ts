// `docker-agent-hub uninstall` from the built bin, as an operator runs it, against
// what a real hub left on the real engine and host: a kept container and a running
// one on its job network, a named agent with its volume, a snapshot image, the
// network and its packet filter rules (IPv4 and IPv6).
import { execFile } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoPath } from '../../hub/platform/paths.js';
import { jobBridgeName, jobNetworkName } from '../../hub/backend/docker/network.js';
import { rulesFor } from '../../hub/backend/docker/firewall.js';
import { collect, containersOf, docker, finalState, removeContainers, settledAgent, startTestHub, type TestHub } from '../helpers/hub.js';

const HUB = repoPath('build', 'hub.mjs');
let t: TestHub;

function uninstall(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [HUB, 'uninstall', '--data-dir', t.dataDir, ...args], (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const labelled = () => ({ label: [`docker-agent.hub=${t.hub.hubId}`] });

beforeAll(async () => {
  t = await startTestHub();
});
let stopped = false;
afterAll(async () => {
  // Removes whatever uninstall did not (nothing, when the test passes).
  if (!stopped) await t?.close();
  else {
    await removeContainers(t.hub.hubId);
    rmSync(t.dataDir, { recursive: true, force: true });
  }
});

describe('docker-agent-hub uninstall', () => {
  it('refuses while the hub runs, then removes every container, the network, its rules, snapshot images, volumes and the data folder', async () => {
    const kept = await t.client.createJob({ profile: 'deployer', run: 'echo made > /tmp/made', keep: true, snapshot: true });
    expect(finalState(await collect(t.client, kept.id))).toBe('succeeded');
    const running = await t.client.createJob({ profile: 'deployer', run: 'echo up; sleep 300', timeout: 600 });
    for await (const e of t.client.events(running.id)) if (e.type === 'stdout') break;
    await t.client.createAgent({ name: 'left-behind' });
    expect(await settledAgent(t.client, 'left-behind')).toBe('running');

    const refused = await uninstall();
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('is running: stop it first');
    expect((await containersOf(t.hub.hubId)).length).toBeGreaterThanOrEqual(3);

    // Stopped as SIGTERM stops it: running containers and the network stay, for the next start.
    await t.hub.close();
    stopped = true;
    const bridge = jobBridgeName(t.hub.hubId);
    expect((await rulesFor(bridge)).map((r) => r.family)).toEqual(expect.arrayContaining([4, 6]));
    expect((await docker.listImages({ filters: labelled() })).length).toBe(1);
    expect((await docker.listVolumes({ filters: labelled() })).Volumes?.length).toBe(1);

    const done = await uninstall('--images', '--volumes', '--data', '--json');
    expect(done.stderr).toBe('');
    expect(done.code).toBe(0);
    const report = JSON.parse(done.stdout);
    expect(report).toMatchObject({ hubId: t.hub.hubId, network: true, images: 1, volumes: 1, problems: [], dataDir: 'removed' });
    expect(report.containers).toBeGreaterThanOrEqual(3);
    expect(report.rules).toBeGreaterThanOrEqual(9);

    expect(await containersOf(t.hub.hubId)).toEqual([]);
    await expect(docker.getNetwork(jobNetworkName(t.hub.hubId)).inspect()).rejects.toMatchObject({ statusCode: 404 });
    expect(await rulesFor(bridge)).toEqual([]);
    expect(await docker.listImages({ filters: labelled() })).toEqual([]);
    expect((await docker.listVolumes({ filters: labelled() })).Volumes ?? []).toEqual([]);
    expect(existsSync(t.dataDir)).toBe(false);
  });
});

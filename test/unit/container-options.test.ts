// The hardened container options, checked without an engine: what every job's and
// agent's container is asked to be, from a pure function of its spec.
import { describe, expect, it } from 'vitest';
import { containerOptions, type ContainerSettings } from '../../hub/backend/docker/container-options.js';
import type { ContainerSpec } from '../../hub/backend/types.js';
import { repoPath } from '../../hub/platform/paths.js';
import { ProfileRegistry } from '../../hub/profiles/registry.js';

const profiles = new ProfileRegistry(repoPath('profiles'));
const settings: ContainerSettings = {
  agentSocketDir: '/run/hub',
  privileged: () => ({ CapAdd: ['ALL'], SecurityOpt: ['no-new-privileges', 'seccomp=unconfined'] }),
};
const spec = (over: Partial<ContainerSpec> = {}): ContainerSpec => ({
  jobId: 'j1',
  hubId: 'h1',
  image: 'docker-agent/default:x',
  profile: profiles.get('default'),
  env: { DOCKER_AGENT_AGENT_TOKEN: 'agt_x' },
  ...over,
});

describe("a container's options", () => {
  it('run as a non-root user with every capability dropped, no new privileges, limits and no network', () => {
    const o = containerOptions(spec(), settings);
    expect(o.User).toMatch(/^[1-9][0-9]*:[0-9]+$/);
    expect(o.HostConfig).toMatchObject({
      Init: true,
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      NetworkMode: 'none',
      Memory: 1024 ** 3,
      MemorySwap: 1024 ** 3,
      NanoCpus: 1e9,
      PidsLimit: 512,
      Binds: ['/run/hub:/run/docker-agent:ro'],
    });
    expect(o.HostConfig!.Privileged).toBeUndefined();
    expect(o.Env).toEqual(['DOCKER_AGENT_AGENT_TOKEN=agt_x']);
  });

  it("take the profile's own limits", () => {
    const base = profiles.get('default');
    const o = containerOptions(spec({ profile: { ...base, resources: { memory: '256m', cpus: 0.5, pids: 64 } } }), settings);
    expect(o.HostConfig).toMatchObject({ Memory: 256 * 1024 ** 2, NanoCpus: 5e8, PidsLimit: 64 });
  });

  it('name what they are in labels that override any a snapshot image inherited', () => {
    expect(containerOptions(spec(), settings).Labels).toMatchObject({
      'docker-agent.job': 'j1',
      'docker-agent.hub': 'h1',
      'docker-agent.agent': '',
      'docker-agent.pool': '',
    });
    const agent = containerOptions(spec({ jobId: 'agent:a1', agent: { id: 'a1', volume: 'vol-a1' } }), settings);
    expect(agent.Labels!['docker-agent.agent']).toBe('a1');
    expect(agent.HostConfig!.Binds).toContain('vol-a1:/workspace');
    expect(agent.name).toBe('docker-agent-agent-a1');
  });

  it("join the hub's fenced job network for a bridge profile, and are refused, saying why, when the hub has none", () => {
    const bridge = { ...profiles.get('default'), network: 'bridge' as const };
    expect(containerOptions(spec({ profile: bridge }), { ...settings, network: 'da-jobs' }).HostConfig!.NetworkMode).toBe('da-jobs');
    expect(() => containerOptions(spec({ profile: bridge }), { ...settings, networkProblem: 'the engine said no' })).toThrow(
      /needs the hub's job network \(network: bridge\), which this hub has not got: the engine said no/,
    );
  });

  it('carry nofile and nproc limits, and turn IPv6 off on the job network unless privileged', () => {
    const bridge = { ...profiles.get('default'), network: 'bridge' as const };
    const plain = containerOptions(spec({ profile: bridge }), { ...settings, network: 'da-jobs', ipv6: true }).HostConfig!;
    expect(plain.Ulimits).toEqual([
      { Name: 'nofile', Soft: 8192, Hard: 8192 },
      { Name: 'nproc', Soft: 16384, Hard: 16384 },
    ]);
    expect(plain.Sysctls).toEqual({ 'net.ipv6.conf.all.disable_ipv6': '1' });
    expect(containerOptions(spec({ profile: profiles.get('docker-host') }), { ...settings, ipv6: true }).HostConfig!.Sysctls).toBeUndefined();
    // A kernel without IPv6 has no such sysctl, and the engine would refuse it.
    expect(containerOptions(spec({ profile: bridge }), { ...settings, network: 'da-jobs' }).HostConfig!.Sysctls).toBeUndefined();
    // With no network there is only loopback: nothing to turn off.
    expect(containerOptions(spec(), { ...settings, ipv6: true }).HostConfig!.Sysctls).toBeUndefined();
  });

  it("carry the engine's size quota on their writable layer only where the storage driver has one", () => {
    expect(containerOptions(spec(), settings).HostConfig!.StorageOpt).toBeUndefined();
    expect(containerOptions(spec(), { ...settings, diskQuotaBytes: 52428800 }).HostConfig!.StorageOpt).toEqual({ size: '52428800' });
  });

  it('get what a privileged profile is given only when the profile is privileged', () => {
    const o = containerOptions(spec({ profile: profiles.get('docker-host') }), settings);
    expect(o.HostConfig).toMatchObject({ CapAdd: ['ALL'], SecurityOpt: ['no-new-privileges', 'seccomp=unconfined'] });
    expect(o.HostConfig!.CapDrop).toBeUndefined();
  });
});

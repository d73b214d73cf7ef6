// A job as a Swarm service, checked without an engine: the same hardening as a
// container on one host, as far as a service carries it, and a clear refusal for
// what it cannot carry.
import { describe, expect, it } from 'vitest';
import { jobServiceSpec } from '../../hub/backend/swarm/service-spec.js';
import type { ContainerSpec } from '../../hub/backend/types.js';
import { repoPath } from '../../hub/platform/paths.js';
import { ProfileRegistry } from '../../hub/profiles/registry.js';

const profiles = new ProfileRegistry(repoPath('profiles'));
const spec = (over: Partial<ContainerSpec> = {}): ContainerSpec => ({
  jobId: 'j1',
  hubId: 'h1',
  image: 'unused',
  profile: profiles.get('default'),
  env: { DOCKER_AGENT_AGENT_TOKEN: 'agt_x' },
  ...over,
});
const image = '127.0.0.1:5055/docker-agent/default@sha256:' + 'a'.repeat(64);

describe("a job's Swarm service", () => {
  it('runs once, by digest, as a non-root user with every capability dropped, init, ulimits, limits reserved, labels and the socket', () => {
    const s = jobServiceSpec(spec(), { image, agentSocketDir: '/run/hub', constraints: ['node.labels.docker-agent.jobs == true'] }) as unknown as {
      Name: string;
      Labels: Record<string, string>;
      Mode: unknown;
      TaskTemplate: {
        ContainerSpec: Record<string, unknown>;
        Resources: { Limits: Record<string, number>; Reservations: Record<string, number> };
        RestartPolicy: unknown;
        Placement: unknown;
        LogDriver: unknown;
      };
    };
    expect(s.Name).toBe('docker-agent-j1');
    expect(s.Mode).toEqual({ ReplicatedJob: { MaxConcurrent: 1, TotalCompletions: 1 } });
    expect(s.Labels).toMatchObject({ 'docker-agent.job': 'j1', 'docker-agent.hub': 'h1', 'docker-agent.profile': 'default' });
    const c = s.TaskTemplate.ContainerSpec;
    expect(c).toMatchObject({
      Image: image,
      User: expect.stringMatching(/^[1-9][0-9]*:[0-9]+$/),
      Dir: '/workspace',
      Init: true,
      CapabilityDrop: ['ALL'],
      Ulimits: [
        { Name: 'nofile', Soft: 8192, Hard: 8192 },
        { Name: 'nproc', Soft: 16384, Hard: 16384 },
      ],
      Mounts: [{ Type: 'bind', Source: '/run/hub', Target: '/run/docker-agent', ReadOnly: true }],
      Labels: s.Labels,
    });
    expect(c.Env).toContain('DOCKER_AGENT_AGENT_TOKEN=agt_x');
    // Swarm places by reservations: a node is never given more than its cores and memory hold.
    expect(s.TaskTemplate.Resources).toEqual({
      Limits: { NanoCPUs: 1e9, MemoryBytes: 1024 ** 3, Pids: 512 },
      Reservations: { MemoryBytes: 1024 ** 3 },
    });
    expect(s.TaskTemplate.RestartPolicy).toEqual({ Condition: 'none', MaxAttempts: 0 });
    expect(s.TaskTemplate.Placement).toEqual({ Constraints: ['node.labels.docker-agent.jobs == true'] });
    expect(s.TaskTemplate.LogDriver).toEqual({ Name: 'json-file', Options: { 'max-size': '10m', 'max-file': '3' } });
  });

  it('refuses a privileged profile and a bridge one, saying why', () => {
    expect(() => jobServiceSpec(spec({ profile: profiles.get('docker-host') }), { image })).toThrow(
      /profile docker-host is privileged, and a Swarm service cannot be/,
    );
    expect(() => jobServiceSpec(spec({ profile: profiles.get('deployer') }), { image })).toThrow(/needs the job network \(network: bridge\)/);
  });
});

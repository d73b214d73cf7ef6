// A job's container as a Swarm service: the same hardened options as a container on
// one host (docker/container-options.ts), as far as a service carries them through
// Engine API 1.41. One run (`ReplicatedJob`, restart `none`); memory reserved as
// limited, since Swarm places by reservations; the image by digest, so no node
// pulls a tag that has moved. What a service cannot carry is refused here, by name.
// A pure function, like containerOptions: tested without an engine.
import type Docker from 'dockerode';
import { HubError } from '../../platform/errors.js';
import { containerOptions } from '../docker/container-options.js';
import { AGENT_SOCKET_DIR_IN_CONTAINER, LABELS, type ContainerSpec } from '../types.js';

export interface ServiceSettings {
  /** The image by digest in the registry every node pulls from (`registry/name@sha256:…`). */
  image: string;
  /** The host folder with the hub's runtime socket on every node (a lab on one machine, or the node helper's relay). */
  agentSocketDir?: string;
  /** Placement constraints: which nodes take jobs (all by default). */
  constraints?: string[];
  logMaxSize?: string;
  logMaxFiles?: number;
}

export function jobServiceSpec(spec: ContainerSpec, s: ServiceSettings): Docker.CreateServiceOptions {
  const { profile } = spec;
  if (profile.privileged) {
    throw new HubError(
      'PROFILE_NOT_ALLOWED',
      `profile ${profile.name} is privileged, and a Swarm service cannot be (Engine API 1.41); run it on a hub with the single-host backend`,
    );
  }
  if (profile.network === 'bridge') {
    throw new HubError('PROFILE_NOT_ALLOWED', `profile ${profile.name} needs the job network (network: bridge), which the swarm backend does not make yet`);
  }
  const o = containerOptions(spec, { privileged: () => ({}), logMaxSize: s.logMaxSize, logMaxFiles: s.logMaxFiles });
  const h = o.HostConfig!;
  return {
    Name: o.name,
    Labels: o.Labels,
    TaskTemplate: {
      ContainerSpec: {
        Image: s.image,
        Env: o.Env,
        Labels: o.Labels,
        User: o.User,
        Dir: o.WorkingDir,
        Init: h.Init,
        CapabilityDrop: h.CapDrop as string[],
        Ulimits: h.Ulimits,
        Mounts: [
          ...(s.agentSocketDir ? [{ Type: 'bind', Source: s.agentSocketDir, Target: AGENT_SOCKET_DIR_IN_CONTAINER, ReadOnly: true }] : []),
          // Made on the node that takes the task (labelled, so its hub finds it); the agent is pinned there from then on.
          ...(spec.agent
            ? [
                {
                  Type: 'volume',
                  Source: spec.agent.volume,
                  Target: '/workspace',
                  VolumeOptions: { Labels: { [LABELS.hub]: spec.hubId, [LABELS.agent]: spec.agent.id } },
                },
              ]
            : []),
        ],
      },
      Resources: {
        Limits: { NanoCPUs: h.NanoCpus, MemoryBytes: h.Memory, Pids: h.PidsLimit },
        // Memory reserved as limited (it cannot be shared), so the scheduler places by it; CPU only capped, as on
        // one host: reserving it would hold a 2-core node to two jobs, and Swarm's constraint enforcer counts a
        // finished job's task against its node until its service goes, rejecting running tasks past the sum.
        Reservations: { MemoryBytes: h.Memory },
      },
      RestartPolicy: { Condition: 'none', MaxAttempts: 0 },
      Placement: { Constraints: s.constraints ?? [] },
      LogDriver: { Name: h.LogConfig!.Type!, Options: h.LogConfig!.Config as Record<string, string> },
    },
    Mode: { ReplicatedJob: { MaxConcurrent: 1, TotalCompletions: 1 } },
  } as Docker.CreateServiceOptions;
}

// The operator's view of a Swarm's nodes (`docker-agent-hub nodes`): each node's
// state and availability with the jobs of one hub on it, and maintenance by
// availability: `pause` lets what runs there finish and places nothing new;
// `drain` also stops what runs there (its jobs end as lost).
import type Docker from 'dockerode';
import { HubError } from '../../platform/errors.js';
import { LABELS } from '../types.js';
import { asNode, type SwarmNode } from './node-engines.js';
import type { TaskInfo } from './task-watch.js';

export type Availability = 'active' | 'pause' | 'drain';

export interface NodeRow extends SwarmNode {
  /** Tasks of this hub's services running on the node now. */
  jobs: number;
}

export async function listNodes(manager: Docker, hubId: string): Promise<NodeRow[]> {
  const [nodes, services] = await Promise.all([
    manager.listNodes() as Promise<Parameters<typeof asNode>[0][]>,
    manager.listServices({ filters: { label: [`${LABELS.hub}=${hubId}`] } }) as Promise<Array<{ ID: string }>>,
  ]);
  const tasks = services.length
    ? // Not by desired state: a job's task is desired `complete` while it runs.
      ((await manager.listTasks({ filters: { service: services.map((s) => s.ID) } })) as TaskInfo[])
    : [];
  return nodes
    .map(asNode)
    .map((n) => ({ ...n, jobs: tasks.filter((t) => t.NodeID === n.id && t.Status.State === 'running').length }))
    .sort((a, b) => a.hostname.localeCompare(b.hostname));
}

/** Sets a node's availability, found by hostname or id. */
export async function setAvailability(manager: Docker, name: string, availability: Availability): Promise<SwarmNode> {
  const found = ((await manager.listNodes()) as Parameters<typeof asNode>[0][]).map(asNode).filter((n) => n.hostname === name || n.id === name);
  if (found.length !== 1) {
    throw new HubError(
      'NOT_FOUND',
      found.length ? `${name} names ${found.length} nodes: give its id` : `no node ${name} in the Swarm (see \`docker-agent-hub nodes\`)`,
    );
  }
  const node = manager.getNode(found[0]!.id);
  const { Version, Spec } = (await node.inspect()) as { Version: { Index: number }; Spec: Record<string, unknown> };
  await node.update({ version: Version.Index, ...Spec, Availability: availability });
  return { ...found[0]!, availability };
}

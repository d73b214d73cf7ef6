// The node-local half of a Swarm: exec, commit, a task's container's removal and
// its written bytes need the engine of the node the task runs on (moby#27552). Where
// each node's engine is comes from DOCKER_AGENT_SWARM_NODE_SOCKET, a path or address
// with Swarm's {{.Node.Hostname}} / {{.Node.ID}}: the node helper's view of its own
// node, which a hub on the same machine as its nodes (the swarm lab) shares.
import Docker from 'dockerode';
import { HubError } from '../../platform/errors.js';
import { engineAddress } from '../docker/connect.js';

export interface SwarmNode {
  id: string;
  hostname: string;
  /** ready, down, unknown, disconnected. */
  state: string;
  /** active, pause, drain. */
  availability: string;
  role: string;
  address: string;
}

interface NodeInfo {
  ID: string;
  Description?: { Hostname?: string };
  Status?: { State?: string; Addr?: string };
  Spec?: { Availability?: string; Role?: string };
}

export function asNode(n: NodeInfo): SwarmNode {
  return {
    id: n.ID,
    hostname: n.Description?.Hostname ?? '',
    state: n.Status?.State ?? 'unknown',
    availability: n.Spec?.Availability ?? 'active',
    role: n.Spec?.Role ?? 'worker',
    address: n.Status?.Addr ?? '',
  };
}

export class NodeEngines {
  private readonly engines = new Map<string, Docker>();

  constructor(
    private readonly manager: Docker,
    private readonly template: string,
    private readonly apiVersion: string,
  ) {}

  /** The engine of node `id`, as the template names it. */
  async engine(id: string): Promise<Docker> {
    const known = this.engines.get(id);
    if (known) return known;
    const node = await this.node(id);
    // A node names itself: a hostname that is not one must not point the hub at some other engine or path.
    if (this.template.includes('{{.Node.Hostname}}') && !/^[a-z0-9][a-z0-9.-]{0,252}$/i.test(node.hostname)) {
      throw new HubError('ENGINE_UNAVAILABLE', `node ${id} calls itself ${JSON.stringify(node.hostname)}, which is no hostname: its engine is not reached`);
    }
    const where = this.template.replaceAll('{{.Node.Hostname}}', node.hostname).replaceAll('{{.Node.ID}}', node.id);
    const docker = new Docker({ ...(where.includes('://') ? engineAddress(where) : { socketPath: where }), version: `v${this.apiVersion}` });
    this.engines.set(id, docker);
    return docker;
  }

  /** Node `id` as the managers see it now. */
  async node(id: string): Promise<SwarmNode> {
    try {
      return asNode((await this.manager.getNode(id).inspect()) as NodeInfo);
    } catch (err) {
      throw new HubError('ENGINE_UNAVAILABLE', `the Swarm does not know node ${id}: ${(err as Error).message}`);
    }
  }

  /** Every node, as the managers see it now. */
  async list(): Promise<SwarmNode[]> {
    return ((await this.manager.listNodes()) as NodeInfo[]).map(asNode);
  }
}

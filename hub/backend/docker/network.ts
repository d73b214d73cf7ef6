// The network that jobs of `bridge` profiles join: one per hub, made by the hub,
// labelled as its own, with traffic between its containers off. The host's packet
// filter (firewall.ts) does the rest; when the hub may not change it (not root),
// it says which rules to add and /health reports the gap.
import type Docker from 'dockerode';
import { existsSync, readFileSync } from 'node:fs';
import { LABELS, type NetworkStatus } from '../types.js';
import { applyRules, isolationRules, removeRulesFor, ruleCommands, type Fence } from './firewall.js';

export function jobNetworkName(hubId: string): string {
  return `docker-agent-${hubId}`;
}

/** The bridge's interface name: fixed, so the rules can name it (at most 15 characters). */
export function jobBridgeName(hubId: string): string {
  return `da-${hubId}`.slice(0, 15);
}

/** The host's DNS servers, which the embedded resolver of a container may forward to from the container's namespace. */
function hostResolvers(): string[] {
  if (!existsSync('/etc/resolv.conf')) return [];
  return [...readFileSync('/etc/resolv.conf', 'utf8').matchAll(/^\s*nameserver\s+(\S+)/gm)].map((m) => m[1]!);
}

export interface JobNetworkOptions {
  hubId: string;
  allowTcpPorts: number[];
  /** DOCKER_AGENT_BRIDGE_ALLOW: ranges bridge jobs may reach though they are private. */
  allow: string[];
  /** DOCKER_AGENT_JOB_SUBNET: the network's range; unset, the engine picks one from its pools. */
  subnet?: string;
  isRoot: boolean;
}

const SUBNET_HINT =
  'set DOCKER_AGENT_JOB_SUBNET to a free range (e.g. 10.213.0.0/24), or remove what hubs that are gone left behind with `docker-agent-hub uninstall --data-dir DIR`';

export async function ensureJobNetwork(docker: Docker, opts: JobNetworkOptions): Promise<NetworkStatus> {
  const name = jobNetworkName(opts.hubId);
  const bridge = jobBridgeName(opts.hubId);
  const made = await makeNetwork(docker, name, bridge, opts);
  if (typeof made === 'string') return { name: '', isolated: false, rules: [], problem: made };
  const fence: Fence = { allowTcpPorts: opts.allowTcpPorts, allow: opts.allow, resolvers: hostResolvers() };
  // Without IPv6 in the kernel there is nothing to fence, and ip6tables would fail.
  const rules = isolationRules(bridge, fence).filter((r) => r.family === 4 || existsSync('/proc/sys/net/ipv6'));
  const commands = ruleCommands(rules);
  const status = { name, isolated: false, rules: commands, subnet: made.subnet };
  if (!opts.isRoot) return { ...status, problem: 'the hub does not run as root, so it cannot add the packet filter rules itself' };
  try {
    await applyRules(rules);
    return { ...status, isolated: true };
  } catch (err) {
    return { ...status, problem: `adding the packet filter rules failed: ${(err as Error).message.split('\n')[0]}` };
  }
}

/** The hub's network, made if it is not there (or remade when its range is not the one asked for); a string says why it cannot be. */
async function makeNetwork(docker: Docker, name: string, bridge: string, opts: JobNetworkOptions): Promise<{ subnet?: string } | string> {
  const existing = (await docker.listNetworks({ filters: { name: [name] } })).find((n) => n.Name === name);
  const subnetOf = (n: Docker.NetworkInspectInfo | undefined) => n?.IPAM?.Config?.[0]?.Subnet;
  if (existing && (!opts.subnet || subnetOf(existing) === opts.subnet)) return { subnet: subnetOf(existing) };
  if (existing) {
    // The operator moved the range: a network still in use keeps its old one until its jobs end.
    const removed = await docker
      .getNetwork(name)
      .remove()
      .then(
        () => true,
        () => false,
      );
    if (!removed) return { subnet: subnetOf(existing) };
  }
  try {
    await docker.createNetwork({
      Name: name,
      Driver: 'bridge',
      CheckDuplicate: true,
      Labels: { [LABELS.hub]: opts.hubId, [LABELS.network]: 'jobs' },
      Options: { 'com.docker.network.bridge.enable_icc': 'false', 'com.docker.network.bridge.name': bridge },
      ...(opts.subnet ? { IPAM: { Driver: 'default', Config: [{ Subnet: opts.subnet }] } } : {}),
    });
  } catch (err) {
    // 409: another start of this hub made it meanwhile.
    if ((err as { statusCode?: number }).statusCode !== 409) {
      const why = ((err as { json?: { message?: string } }).json?.message ?? (err as Error).message).trim();
      return `the engine could not make the job network ${name}${opts.subnet ? ` with subnet ${opts.subnet}` : ''}: ${why}; ${SUBNET_HINT}`;
    }
  }
  const net = (await docker.getNetwork(name).inspect()) as Docker.NetworkInspectInfo;
  return { subnet: subnetOf(net) };
}

/** Removes a hub's job network and its rules (when the hub goes for good). Containers on it must be gone; returns whether it was there, and how many rules went. */
export async function removeJobNetwork(docker: Docker, hubId: string, isRoot: boolean): Promise<{ network: boolean; rules: number }> {
  const network = await docker
    .getNetwork(jobNetworkName(hubId))
    .remove()
    .then(
      () => true,
      (err: { statusCode?: number }) => {
        if (err.statusCode !== 404) throw err;
        return false;
      },
    );
  return { network, rules: isRoot ? await removeRulesFor(jobBridgeName(hubId)) : 0 };
}

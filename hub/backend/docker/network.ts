// The network that jobs of `bridge` profiles join: one per hub, made by the hub,
// labelled as its own, with traffic between its containers off. The host's packet
// filter (firewall.ts) does the rest; when the hub may not change it (not root),
// it says which rules to add and /health reports the gap.
import type Docker from 'dockerode';
import { LABELS, type NetworkStatus } from '../types.js';
import { applyRules, isolationRules, removeRulesFor, ruleCommands } from './firewall.js';

export function jobNetworkName(hubId: string): string {
  return `docker-agent-${hubId}`;
}

/** The bridge's interface name: fixed, so the rules can name it (at most 15 characters). */
export function jobBridgeName(hubId: string): string {
  return `da-${hubId}`.slice(0, 15);
}

export async function ensureJobNetwork(docker: Docker, opts: { hubId: string; allowTcpPorts: number[]; isRoot: boolean }): Promise<NetworkStatus> {
  const name = jobNetworkName(opts.hubId);
  const bridge = jobBridgeName(opts.hubId);
  const existing = await docker.listNetworks({ filters: { name: [name] } });
  if (!existing.some((n) => n.Name === name)) {
    try {
      await docker.createNetwork({
        Name: name,
        Driver: 'bridge',
        CheckDuplicate: true,
        Labels: { [LABELS.hub]: opts.hubId, [LABELS.network]: 'jobs' },
        Options: { 'com.docker.network.bridge.enable_icc': 'false', 'com.docker.network.bridge.name': bridge },
      });
    } catch (err) {
      // 409: another start of this hub made it meanwhile.
      if ((err as { statusCode?: number }).statusCode !== 409) throw err;
    }
  }
  const rules = isolationRules(bridge, opts.allowTcpPorts);
  const commands = ruleCommands(rules);
  if (!opts.isRoot) {
    return { name, isolated: false, rules: commands, problem: 'the hub does not run as root, so it cannot add the packet filter rules itself' };
  }
  try {
    await applyRules(rules);
    return { name, isolated: true, rules: commands };
  } catch (err) {
    return { name, isolated: false, rules: commands, problem: `adding the packet filter rules failed: ${(err as Error).message.split('\n')[0]}` };
  }
}

/** Removes a hub's job network and its rules (when the hub goes for good: benchmarks, tests). Containers on it must be gone. */
export async function removeJobNetwork(docker: Docker, hubId: string, isRoot: boolean): Promise<void> {
  await docker
    .getNetwork(jobNetworkName(hubId))
    .remove()
    .catch((err: { statusCode?: number }) => {
      if (err.statusCode !== 404) throw err;
    });
  if (isRoot) await removeRulesFor(jobBridgeName(hubId));
}

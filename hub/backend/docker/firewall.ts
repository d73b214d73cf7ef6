// The host's packet filter around the jobs' bridge. Docker's own rules keep
// networks apart and (with enable_icc=false) containers of one network apart; what
// they leave open is the host itself (traffic to any of its addresses is INPUT, not
// FORWARD) and whatever the host can route to: the LAN, private ranges, link-local
// 169.254.169.254. These rules close them for traffic that enters from the jobs' bridge:
//   DOCKER-USER (forwarded): ranges the operator allows and the host's DNS servers
//                            go on to Docker's own rules (RETURN, never ACCEPT, so
//                            Docker's isolation still applies); RFC 1918, CGNAT and
//                            link-local are dropped before they leave the host;
//   INPUT (to the host):     replies to the host's own connections, the hub's agent
//                            port when containers dial it over TCP, nothing else;
//   IPv6 (ip6tables):        nothing enters or crosses the host from the bridge (the
//                            network has no IPv6, and containers have it turned off,
//                            but engines before 26.0.2 give them link-local addresses).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);
const COMMENT = ['-m', 'comment', '--comment', 'docker-agent'];

/** What a bridge job may not reach unless the operator allows it (DOCKER_AGENT_BRIDGE_ALLOW). */
export const FENCED_RANGES = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', '169.254.0.0/16'];

export interface Rule {
  /** iptables (4) or ip6tables (6). */
  family: 4 | 6;
  chain: 'DOCKER-USER' | 'INPUT' | 'FORWARD';
  /** The match and target, without the chain. */
  spec: string[];
}

export interface Fence {
  /** TCP ports of the host that containers may reach (the hub's agent port when they dial it over TCP). */
  allowTcpPorts?: number[];
  /** Ranges (CIDR) bridge jobs may reach though they are fenced (DOCKER_AGENT_BRIDGE_ALLOW). */
  allow?: string[];
  /** The host's DNS servers: reachable on port 53 only, when they are in a fenced range (many clouds' are). */
  resolvers?: string[];
}

/** The rules for one bridge, in the order they must be evaluated within each chain. */
export function isolationRules(bridge: string, fence: Fence = {}): Rule[] {
  const rule = (chain: Rule['chain'], match: string[], target: string, family: 4 | 6 = 4): Rule => ({
    family,
    chain,
    spec: ['-i', bridge, ...match, ...COMMENT, '-j', target],
  });
  const resolvers = (fence.resolvers ?? []).filter((r) => !r.includes(':'));
  return [
    ...(fence.allow ?? []).map((cidr) => rule('DOCKER-USER', ['-d', cidr], 'RETURN')),
    ...resolvers.flatMap((ip) => ['udp', 'tcp'].map((proto) => rule('DOCKER-USER', ['-d', `${ip}/32`, '-p', proto, '--dport', '53'], 'RETURN'))),
    ...FENCED_RANGES.map((cidr) => rule('DOCKER-USER', ['-d', cidr], 'DROP')),
    rule('INPUT', ['-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED'], 'ACCEPT'),
    ...(fence.allowTcpPorts ?? []).map((port) => rule('INPUT', ['-p', 'tcp', '--dport', String(port)], 'ACCEPT')),
    rule('INPUT', [], 'DROP'),
    rule('FORWARD', [], 'DROP', 6),
    rule('INPUT', [], 'DROP', 6),
  ];
}

function tool(family: 4 | 6): string {
  return family === 4 ? 'iptables' : 'ip6tables';
}

/** The commands an operator runs to put the rules in place (idempotent: each is checked first). */
export function ruleCommands(rules: Rule[]): string[] {
  // Inserted at the top of each chain in reverse, so they end up in the listed order, ahead of anything that accepts.
  return [...rules].reverse().map((r) => {
    const t = tool(r.family);
    return `${t} -C ${r.chain} ${quote(r.spec)} 2>/dev/null || ${t} -I ${r.chain} 1 ${quote(r.spec)}`;
  });
}

function quote(args: string[]): string {
  return args.map((a) => (/^[\w./:,-]+$/.test(a) ? a : `'${a}'`)).join(' ');
}

/**
 * Puts the rules in place unless they are: all of them, or as many as it may.
 * Re-checking each start is what keeps them after a reboot (the network outlives
 * the packet filter's state).
 */
export async function applyRules(rules: Rule[]): Promise<void> {
  const missing: Rule[] = [];
  for (const r of rules) {
    try {
      await run(tool(r.family), ['-w', '-C', r.chain, ...r.spec]);
    } catch {
      missing.push(r);
    }
  }
  if (!missing.length) return;
  // A partial set in the wrong order would be worse than none: remove and insert all of them in order.
  await removeRules(rules);
  for (const r of [...rules].reverse()) await run(tool(r.family), ['-w', '-I', r.chain, '1', ...r.spec]);
}

/** Removes every copy of the rules (for tests, and before re-inserting them in order). */
export async function removeRules(rules: Rule[]): Promise<void> {
  for (const r of rules) {
    for (;;) {
      try {
        await run(tool(r.family), ['-w', '-D', r.chain, ...r.spec]);
      } catch {
        break;
      }
    }
  }
}

/** Every rule, in either family, that matches traffic from `bridge`, as `-S` prints it. */
export async function rulesFor(bridge: string): Promise<{ family: 4 | 6; line: string }[]> {
  const found: { family: 4 | 6; line: string }[] = [];
  for (const [family, chain] of [
    [4, 'DOCKER-USER'],
    [4, 'INPUT'],
    [6, 'FORWARD'],
    [6, 'INPUT'],
  ] as const) {
    // A chain that is not there (no DOCKER-USER without Docker's iptables) holds nothing of ours.
    const stdout = await run(tool(family), ['-w', '-S', chain]).then(
      (r) => r.stdout,
      () => '',
    );
    for (const line of stdout.split('\n')) if (line.startsWith(`-A ${chain} `) && line.includes(` -i ${bridge} `)) found.push({ family, line });
  }
  return found;
}

/** Removes every rule that matches traffic from `bridge` (when a hub's network goes away); returns how many. */
export async function removeRulesFor(bridge: string): Promise<number> {
  const found = await rulesFor(bridge);
  // -S prints each rule as the arguments that add it; -D takes the same ones. Comments are one word here.
  for (const { family, line } of found) await run(tool(family), ['-w', '-D', ...line.slice(3).replace(/"/g, '').split(' ')]);
  return found.length;
}

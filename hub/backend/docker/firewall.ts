// The host's packet filter around the jobs' bridge. Docker's own rules keep
// networks apart and (with enable_icc=false) containers of one network apart; what
// they leave open is the host itself (traffic to any of its addresses is INPUT, not
// FORWARD) and whatever the host can route to, 169.254.169.254 included. These
// rules close both for traffic that enters from the jobs' bridge:
//   DOCKER-USER (forwarded): drop 169.254.0.0/16 before it leaves the host;
//   INPUT (to the host):     replies to the host's own connections, the hub's agent
//                            port when containers dial it over TCP, nothing else.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);
const COMMENT = ['-m', 'comment', '--comment', 'docker-agent'];

export interface Rule {
  chain: 'DOCKER-USER' | 'INPUT';
  /** The match and target, without the chain. */
  spec: string[];
}

/** The rules for one bridge, in the order they must be evaluated within each chain. */
export function isolationRules(bridge: string, allowTcpPorts: number[] = []): Rule[] {
  return [
    { chain: 'DOCKER-USER', spec: ['-i', bridge, '-d', '169.254.0.0/16', ...COMMENT, '-j', 'DROP'] },
    { chain: 'INPUT', spec: ['-i', bridge, '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', ...COMMENT, '-j', 'ACCEPT'] },
    ...allowTcpPorts.map((port): Rule => ({ chain: 'INPUT', spec: ['-i', bridge, '-p', 'tcp', '--dport', String(port), ...COMMENT, '-j', 'ACCEPT'] })),
    { chain: 'INPUT', spec: ['-i', bridge, ...COMMENT, '-j', 'DROP'] },
  ];
}

/** The commands an operator runs to put the rules in place (idempotent: each is checked first). */
export function ruleCommands(rules: Rule[]): string[] {
  // Inserted at the top of each chain in reverse, so they end up in the listed order, ahead of anything that accepts.
  return [...rules].reverse().map((r) => `iptables -C ${r.chain} ${quote(r.spec)} 2>/dev/null || iptables -I ${r.chain} 1 ${quote(r.spec)}`);
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
      await run('iptables', ['-w', '-C', r.chain, ...r.spec]);
    } catch {
      missing.push(r);
    }
  }
  if (!missing.length) return;
  // A partial set in the wrong order would be worse than none: remove and insert all of them in order.
  await removeRules(rules);
  for (const r of [...rules].reverse()) await run('iptables', ['-w', '-I', r.chain, '1', ...r.spec]);
}

/** Removes every copy of the rules (for tests, and before re-inserting them in order). */
export async function removeRules(rules: Rule[]): Promise<void> {
  for (const r of rules) {
    for (;;) {
      try {
        await run('iptables', ['-w', '-D', r.chain, ...r.spec]);
      } catch {
        break;
      }
    }
  }
}

/** Removes every rule of the two chains that matches traffic from `bridge` (when a hub's network goes away). */
export async function removeRulesFor(bridge: string): Promise<void> {
  for (const chain of ['DOCKER-USER', 'INPUT']) {
    const { stdout } = await run('iptables', ['-w', '-S', chain]);
    for (const line of stdout.split('\n')) {
      if (!line.startsWith(`-A ${chain} `) || !line.includes(` -i ${bridge} `)) continue;
      // -S prints each rule as the arguments that add it; -D takes the same ones. Comments are one word here.
      await run('iptables', ['-w', '-D', ...line.slice(3).replace(/"/g, '').split(' ')]);
    }
  }
}

// Jobs of `bridge` profiles on the real engine and the host's real packet filter:
// they join the hub's own network and cannot reach each other, the host's own
// addresses, private ranges or the link-local metadata address, but can reach what
// stands for the internet. Test traffic goes only to this project's containers, this
// host's own addresses, hosts in network namespaces this test makes, and the
// 169.254.169.254 probe that the rules drop before it leaves the host.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { connect } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, docker, finalState, output, startTestHub, type TestHub } from '../helpers/hub.js';
import { jobBridgeName, jobNetworkName } from '../../hub/backend/docker/network.js';
import { isolationRules, ruleCommands } from '../../hub/backend/docker/firewall.js';

/** A host of its own network namespace, reached from this one through a veth pair, with a listener on port 7000. */
interface NsHost {
  name: string;
  address: string;
  server: ChildProcess;
}

const SUBNET = '10.213.7.0/24';
// The private range the operator allows, one it does not, and one that stands for the internet (TEST-NET-2 is not private).
const ALLOWED = { name: 'da-t-allowed', veth: 'dat-al', host: '10.251.0.1', peer: '10.251.0.2' };
const PRIVATE = { name: 'da-t-private', veth: 'dat-pr', host: '192.168.251.1', peer: '192.168.251.2' };
const PUBLIC = { name: 'da-t-public', veth: 'dat-pu', host: '198.51.100.1', peer: '198.51.100.2' };
const nsHosts: NsHost[] = [];

function sh(...args: string[]): void {
  execFileSync(args[0]!, args.slice(1), { stdio: 'pipe' });
}

async function nsHost(n: { name: string; veth: string; host: string; peer: string }): Promise<NsHost> {
  removeNsHost(n.name);
  sh('ip', 'netns', 'add', n.name);
  sh('ip', 'link', 'add', `${n.veth}-h`, 'type', 'veth', 'peer', 'name', `${n.veth}-n`);
  sh('ip', 'link', 'set', `${n.veth}-n`, 'netns', n.name);
  sh('ip', 'addr', 'add', `${n.host}/24`, 'dev', `${n.veth}-h`);
  sh('ip', 'link', 'set', `${n.veth}-h`, 'up');
  const inNs = (...a: string[]) => sh('ip', 'netns', 'exec', n.name, ...a);
  inNs('ip', 'addr', 'add', `${n.peer}/24`, 'dev', `${n.veth}-n`);
  inNs('ip', 'link', 'set', `${n.veth}-n`, 'up');
  inNs('ip', 'link', 'set', 'lo', 'up');
  inNs('ip', 'route', 'add', 'default', 'via', n.host);
  const server = spawn(
    'ip',
    ['netns', 'exec', n.name, process.execPath, '-e', "require('net').createServer(c=>{c.on('error',()=>{});c.end('hi')}).listen(7000,()=>console.log('up'))"],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await new Promise<void>((resolve, reject) => {
    server.stdout!.once('data', () => resolve());
    server.once('exit', (code) => reject(new Error(`the listener in ${n.name} ended (${code})`)));
  });
  return { name: n.name, address: n.peer, server };
}

function removeNsHost(name: string): void {
  // Removing the namespace removes its end of the pair, and with it ours.
  try {
    sh('ip', 'netns', 'del', name);
  } catch {
    // not there
  }
}

let t: TestHub;
let listener: Server;
let hits = 0;
beforeAll(async () => {
  for (const n of [ALLOWED, PRIVATE, PUBLIC]) nsHosts.push(await nsHost(n));
  t = await startTestHub({ DOCKER_AGENT_JOB_SUBNET: SUBNET, DOCKER_AGENT_BRIDGE_ALLOW: '10.251.0.0/24' });
  // A service of the host on every address: what a job must not reach.
  listener = createServer((s) => {
    hits++;
    s.end('host service\n');
  });
  await new Promise<void>((r) => listener.listen(0, '0.0.0.0', r));
});
afterAll(async () => {
  await new Promise((r) => listener?.close(r));
  await t?.close();
  for (const h of nsHosts) {
    h.server.kill();
    removeNsHost(h.name);
  }
});
/** The host's own IPv4 addresses, loopback aside. */
function hostAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .filter((a) => a && a.family === 'IPv4' && !a.internal)
    .map((a) => a!.address);
}

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port, timeout: 2000 });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
    s.once('timeout', () => {
      s.destroy();
      resolve(false);
    });
  });
}

/** A listener that prints its address; it ignores clients that reset (the host's control probe does). On the runtime's own Node: the deployer profile offers none. */
const LISTEN = (port: number) =>
  `/opt/docker-agent/node -e "const s=require('net').createServer(c=>{c.on('error',()=>{});c.end('hi')}); s.listen(${port}, () => console.log('listening ' + require('os').networkInterfaces().eth0.find(a => a.family === 'IPv4').address))"`;

describe('bridge jobs', () => {
  it('/health says the job network is isolated; its range is DOCKER_AGENT_JOB_SUBNET', async () => {
    const health = await (await fetch(`${t.hub.url}/health`)).json();
    expect(health).toMatchObject({ status: 'ok', network: { name: jobNetworkName(t.hub.hubId), isolated: true } });
    const net = await docker.getNetwork(jobNetworkName(t.hub.hubId)).inspect();
    expect(net.IPAM!.Config![0]!.Subnet).toBe(SUBNET);
    expect(net.EnableIPv6).toBe(false);
    expect(net.Options).toMatchObject({ 'com.docker.network.bridge.enable_icc': 'false' });
    expect(net.Labels).toMatchObject({ 'docker-agent.hub': t.hub.hubId });
  });

  it('cannot reach another job, the host, private ranges or 169.254.169.254, but can reach themselves, the internet and allowed ranges', async () => {
    // The other job: a listener that stays up until cancelled.
    const victim = await t.client.createJob({ profile: 'deployer', run: `${LISTEN(8080)} & wait`, timeout: 120 });
    let victimIp = '';
    for await (const e of t.client.events(victim.id)) {
      const m = e.type === 'stdout' ? /listening (\S+)/.exec(e.data) : null;
      if (m) {
        victimIp = m[1]!;
        break;
      }
      expect(e.type === 'status' && ['failed', 'error'].includes(e.state), JSON.stringify(e)).toBe(false);
    }
    // Control: the host reaches the victim (replies come back through the ESTABLISHED rule), so it is up and listening.
    expect(await canConnect(victimIp, 8080)).toBe(true);

    const { IPAM } = await docker.getNetwork(jobNetworkName(t.hub.hubId)).inspect();
    const gateway = IPAM!.Config![0]!.Gateway as string;
    const port = (listener.address() as AddressInfo).port;
    const targets = [
      ['victim', victimIp, 8080],
      ['gateway', gateway, port],
      ...hostAddresses().map((a) => [`host ${a}`, a, port]),
      ['metadata', '169.254.169.254', 80],
      ['private', PRIVATE.peer, 7000],
      ['allowed', ALLOWED.peer, 7000],
      ['internet', PUBLIC.peer, 7000],
    ] as const;
    const probe = [
      'probe() { if timeout 2 bash -c "echo > /dev/tcp/$2/$3" 2>/dev/null; then echo "$1: open"; else echo "$1: closed"; fi; }',
      `${LISTEN(9000)} > /tmp/self &`,
      'until grep -q listening /tmp/self 2>/dev/null; do sleep 0.1; done',
      'probe self "$(cut -d" " -f2 /tmp/self)" 9000',
      ...targets.map(([name, host, p]) => `probe '${name}' ${host} ${p}`),
    ].join('\n');
    const prober = await t.client.createJob({ profile: 'deployer', run: probe, timeout: 120 });
    const events = await collect(t.client, prober.id);
    // Still running (a cancel of an ended job is refused): "victim: closed" was the network, not a dead listener.
    await t.client.cancelJob(victim.id);

    const lines = output(events).trim().split('\n').sort();
    const open = new Set(['self', 'allowed', 'internet']);
    expect(lines).toEqual([...targets.map(([name]) => `${name}: ${open.has(String(name)) ? 'open' : 'closed'}`), 'self: open'].sort());
    expect(hits).toBe(0);
    // Dropped by the hub's rule, before it left the host.
    const counters = execFileSync('iptables', ['-w', '-L', 'DOCKER-USER', '-v', '-x', '-n'], { encoding: 'utf8' });
    const rule = counters.split('\n').find((l) => l.includes(jobBridgeName(t.hub.hubId)) && l.includes('169.254.0.0/16'));
    expect(rule, counters).toBeDefined();
    expect(Number(rule!.trim().split(/\s+/)[0])).toBeGreaterThan(0);
  });
});

describe('every container', () => {
  it('has nofile and nproc limits, and no IPv6 unless privileged; ip6tables fences the bridge', async () => {
    const job = await t.client.createJob({
      profile: 'deployer',
      run: 'echo "nofile $(ulimit -n) nproc $(ulimit -u) ipv6off $(cat /proc/sys/net/ipv6/conf/all/disable_ipv6)"',
    });
    const events = await collect(t.client, job.id);
    expect(finalState(events)).toBe('succeeded');
    expect(output(events).trim()).toBe('nofile 8192 nproc 16384 ipv6off 1');
    const bridge = jobBridgeName(t.hub.hubId);
    for (const chain of ['FORWARD', 'INPUT']) {
      expect(execFileSync('ip6tables', ['-w', '-S', chain], { encoding: 'utf8' })).toContain(
        `-A ${chain} -i ${bridge} -m comment --comment docker-agent -j DROP`,
      );
    }
  });
});

describe('a hub that cannot make its network', () => {
  it('says why in /health and in each bridge job, naming DOCKER_AGENT_JOB_SUBNET; jobs without a network still run', async () => {
    // The range of the network the test hub above made: the engine refuses a second network on it.
    const other = await startTestHub({ DOCKER_AGENT_JOB_SUBNET: SUBNET });
    try {
      const health = (await (await fetch(`${other.hub.url}/health`)).json()) as { status: string; network: { problem: string } };
      expect(health.status).toBe('degraded');
      expect(health.network.problem).toMatch(/could not make the job network .* with subnet 10\.213\.7\.0\/24: .*DOCKER_AGENT_JOB_SUBNET/);
      const bridged = await other.client.createJob({ profile: 'deployer', run: 'echo never' });
      const events = await collect(other.client, bridged.id);
      const end = events.at(-1) as { state: string; reason?: string; code?: string };
      expect(finalState(events)).toBe('error');
      expect(JSON.stringify(end)).toMatch(/needs the hub's job network .*DOCKER_AGENT_JOB_SUBNET/);
      const plain = await other.client.createJob({ run: 'echo fine' });
      const plainEvents = await collect(other.client, plain.id);
      expect(finalState(plainEvents)).toBe('succeeded');
    } finally {
      await other.close();
    }
  });
});

describe('a hub that may not change the packet filter', () => {
  it('makes its network but adds no rules, and says exactly which to add', async () => {
    const { ensureJobNetwork } = await import('../../hub/backend/docker/network.js');
    const hubId = `nr${Date.now().toString(16).slice(-8)}`;
    try {
      const status = await ensureJobNetwork(docker, { hubId, allowTcpPorts: [9091], allow: ['10.9.0.0/16'], isRoot: false });
      const bridge = jobBridgeName(hubId);
      expect(status).toMatchObject({
        name: jobNetworkName(hubId),
        isolated: false,
        problem: 'the hub does not run as root, so it cannot add the packet filter rules itself',
      });
      expect(status.rules.slice(0, 4)).toEqual([
        `ip6tables -C INPUT -i ${bridge} -m comment --comment docker-agent -j DROP 2>/dev/null || ip6tables -I INPUT 1 -i ${bridge} -m comment --comment docker-agent -j DROP`,
        `ip6tables -C FORWARD -i ${bridge} -m comment --comment docker-agent -j DROP 2>/dev/null || ip6tables -I FORWARD 1 -i ${bridge} -m comment --comment docker-agent -j DROP`,
        `iptables -C INPUT -i ${bridge} -m comment --comment docker-agent -j DROP 2>/dev/null || iptables -I INPUT 1 -i ${bridge} -m comment --comment docker-agent -j DROP`,
        `iptables -C INPUT -i ${bridge} -p tcp --dport 9091 -m comment --comment docker-agent -j ACCEPT 2>/dev/null || iptables -I INPUT 1 -i ${bridge} -p tcp --dport 9091 -m comment --comment docker-agent -j ACCEPT`,
      ]);
      for (const range of ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', '169.254.0.0/16']) {
        expect(status.rules).toContain(
          `iptables -C DOCKER-USER -i ${bridge} -d ${range} -m comment --comment docker-agent -j DROP 2>/dev/null || iptables -I DOCKER-USER 1 -i ${bridge} -d ${range} -m comment --comment docker-agent -j DROP`,
        );
      }
      // The allowed range goes on to Docker's own rules ahead of the drops.
      expect(status.rules.at(-1)).toBe(
        `iptables -C DOCKER-USER -i ${bridge} -d 10.9.0.0/16 -m comment --comment docker-agent -j RETURN 2>/dev/null || iptables -I DOCKER-USER 1 -i ${bridge} -d 10.9.0.0/16 -m comment --comment docker-agent -j RETURN`,
      );
      expect(status.rules.length).toBe(ruleCommands(isolationRules(bridge, { allowTcpPorts: [9091], allow: ['10.9.0.0/16'], resolvers: resolvers() })).length);
      // Docker adds its own FORWARD rules for the bridge; none of ours is there.
      for (const chain of ['INPUT', 'DOCKER-USER']) {
        expect(execFileSync('iptables', ['-w', '-S', chain], { encoding: 'utf8' })).not.toContain(bridge);
      }
      for (const chain of ['INPUT', 'FORWARD']) {
        expect(execFileSync('ip6tables', ['-w', '-S', chain], { encoding: 'utf8' })).not.toContain(bridge);
      }
    } finally {
      await docker
        .getNetwork(jobNetworkName(hubId))
        .remove()
        .catch(() => {});
    }
  });
});

function resolvers(): string[] {
  return [...readFileSync('/etc/resolv.conf', 'utf8').matchAll(/^\s*nameserver\s+(\S+)/gm)].map((m) => m[1]!);
}

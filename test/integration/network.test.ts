// Jobs of `bridge` profiles on the real engine and the host's real packet filter:
// they join the hub's own network and cannot reach each other, the host's own
// addresses or the link-local metadata address. Test traffic goes only to this
// project's containers, this host's own addresses and the 169.254.169.254 probe
// that the rules drop before it leaves the host.
import { execFileSync } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { connect } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, docker, output, startTestHub, type TestHub } from '../helpers/hub.js';
import { jobBridgeName, jobNetworkName } from '../../hub/backend/docker/network.js';

let t: TestHub;
let listener: Server;
let hits = 0;
beforeAll(async () => {
  t = await startTestHub();
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

/** A listener that prints its address; it ignores clients that reset (the host's control probe does). */
const LISTEN = (port: number) =>
  `node -e "const s=require('net').createServer(c=>{c.on('error',()=>{});c.end('hi')}); s.listen(${port}, () => console.log('listening ' + require('os').networkInterfaces().eth0.find(a => a.family === 'IPv4').address))"`;

describe('bridge jobs', () => {
  it('/health says the job network is isolated', async () => {
    const health = await (await fetch(`${t.hub.url}/health`)).json();
    expect(health).toMatchObject({ status: 'ok', network: { name: jobNetworkName(t.hub.hubId), isolated: true } });
    const net = await docker.getNetwork(jobNetworkName(t.hub.hubId)).inspect();
    expect(net.Options).toMatchObject({ 'com.docker.network.bridge.enable_icc': 'false' });
    expect(net.Labels).toMatchObject({ 'docker-agent.hub': t.hub.hubId });
  });

  it('cannot reach another job, the host or 169.254.169.254, but can reach themselves', async () => {
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
    expect(lines).toEqual([...targets.map(([name]) => `${name}: closed`), 'self: open'].sort());
    expect(hits).toBe(0);
    // Dropped by the hub's rule, before it left the host.
    const counters = execFileSync('iptables', ['-w', '-L', 'DOCKER-USER', '-v', '-x', '-n'], { encoding: 'utf8' });
    const rule = counters.split('\n').find((l) => l.includes(jobBridgeName(t.hub.hubId)) && l.includes('169.254.0.0/16'));
    expect(rule, counters).toBeDefined();
    expect(Number(rule!.trim().split(/\s+/)[0])).toBeGreaterThan(0);
  });
});

describe('a hub that may not change the packet filter', () => {
  it('makes its network but adds no rules, and says exactly which to add', async () => {
    const { ensureJobNetwork } = await import('../../hub/backend/docker/network.js');
    const hubId = `nr${Date.now().toString(16).slice(-8)}`;
    try {
      const status = await ensureJobNetwork(docker, { hubId, allowTcpPorts: [9091], isRoot: false });
      const bridge = jobBridgeName(hubId);
      expect(status).toEqual({
        name: jobNetworkName(hubId),
        isolated: false,
        problem: 'the hub does not run as root, so it cannot add the packet filter rules itself',
        rules: [
          `iptables -C INPUT -i ${bridge} -m comment --comment docker-agent -j DROP 2>/dev/null || iptables -I INPUT 1 -i ${bridge} -m comment --comment docker-agent -j DROP`,
          `iptables -C INPUT -i ${bridge} -p tcp --dport 9091 -m comment --comment docker-agent -j ACCEPT 2>/dev/null || iptables -I INPUT 1 -i ${bridge} -p tcp --dport 9091 -m comment --comment docker-agent -j ACCEPT`,
          `iptables -C INPUT -i ${bridge} -m conntrack --ctstate ESTABLISHED,RELATED -m comment --comment docker-agent -j ACCEPT 2>/dev/null || iptables -I INPUT 1 -i ${bridge} -m conntrack --ctstate ESTABLISHED,RELATED -m comment --comment docker-agent -j ACCEPT`,
          `iptables -C DOCKER-USER -i ${bridge} -d 169.254.0.0/16 -m comment --comment docker-agent -j DROP 2>/dev/null || iptables -I DOCKER-USER 1 -i ${bridge} -d 169.254.0.0/16 -m comment --comment docker-agent -j DROP`,
        ],
      });
      // Docker adds its own FORWARD rules for the bridge; none of ours is there.
      for (const chain of ['INPUT', 'DOCKER-USER']) {
        expect(execFileSync('iptables', ['-w', '-S', chain], { encoding: 'utf8' })).not.toContain(bridge);
      }
    } finally {
      await docker
        .getNetwork(jobNetworkName(hubId))
        .remove()
        .catch(() => {});
    }
  });
});

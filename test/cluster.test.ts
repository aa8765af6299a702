// Three shardvpn nodes behind one virtual address (lab/cluster-lab.ts): nftables source-hash DNAT
// in a balancer namespace, rewritten by keepalived's health checks (deploy/cluster), UDP 1194 and
// TCP 443. Simulated clients and a stock openvpn client connect to the VIP; one node is stopped;
// its clients come back on the others while the others' clients keep their sessions. Prometheus
// scrapes every node with a `node` label, and the cluster recording rule adds them up. The IPVS
// variant's keepalived.conf is validated with keepalived --config-test (this kernel has no IPVS to
// run it).
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import type { LoadReport } from '../src/main/load/report';
import { NetworkNamespace } from '../lab/netns';
import {
  CLUSTER_RULES,
  NFT_BALANCER_SCRIPT,
  balancerConf,
  keepalivedIpvsConf,
  keepalivedNftConf,
  prometheusConfig,
} from '../lab/cluster-config';
import { ClusterLab, PROMETHEUS, TCP_SERVICE, UDP_SERVICE, nodePool, until, type LabNode } from '../lab/cluster-lab';
import { BIN, type LabProcess } from '../lab/vpn-lab';

const has = (command: string, args: string[]): boolean => spawnSync(command, args).status !== null;
const canLab =
  process.getuid?.() === 0 &&
  existsSync('/dev/net/tun') &&
  has('openvpn', ['--version']) &&
  has('keepalived', ['--version']) &&
  has('nft', ['--version']) &&
  has('prometheus', ['--version']);

const UDP_CLIENTS = 90;
const TCP_CLIENTS = 30;

let lab: ClusterLab;
before(async () => {
  if (canLab) lab = await ClusterLab.create({ nodes: 3, services: [UDP_SERVICE, TCP_SERVICE], keepalive: [1, 5] });
});
after(async () => {
  if (canLab) await lab.cleanup();
});

test(
  'the IPVS and nftables keepalived configs pass keepalived --config-test; the rules and scrape config pass promtool',
  { skip: !canLab },
  () => {
    const ipvs = lab.file('keepalived-ipvs.conf', keepalivedIpvsConf(lab.plan));
    const nft = lab.file(
      'keepalived-nft-check.conf',
      keepalivedNftConf(lab.plan, { balancerConf: '/etc/shardvpn-lb/balancer.conf', stateDir: '/run/shardvpn-lb', vrrpInterface: 'lbv0' }),
    );
    for (const conf of [ipvs, nft]) {
      // In the balancer's namespace, where the VRRP interface exists.
      const r = spawnSync('ip', ['netns', 'exec', lab.balancer.name, 'keepalived', '--config-test', '--use-file', conf], {
        encoding: 'utf8',
      });
      // keepalived warns about VRRP instances without a virtual address, and --config-test then
      // exits 5: the nftables variant's instances stand for health states and own no address.
      // Nothing else may be reported.
      const complaints = `${r.stderr}${r.stdout}`
        .split('\n')
        .filter((l) => l.trim() !== '' && !/^\(\w+\) No VIP specified; at least one is sensible$/.test(l.replace(/^.*?: \(/, '(')));
      assert.deepEqual(complaints, [], conf);
      assert.equal(r.status, conf === ipvs ? 0 : 5, `${conf}: ${r.stderr}${r.stdout}`);
    }
    // A broken file fails the same check, so the passes above mean something.
    const broken = lab.file('keepalived-broken.conf', keepalivedIpvsConf(lab.plan).replace('lb_algo sh', 'lb_algo sh\n  real_server'));
    assert.notEqual(spawnSync('keepalived', ['--config-test', '--use-file', broken]).status, 0);

    const rules = lab.file('rules-check.yml', CLUSTER_RULES);
    const out = execFileSync('promtool', ['check', 'rules', rules], { encoding: 'utf8' });
    assert.match(out, /SUCCESS: 5 rules found/);
    execFileSync('promtool', ['check', 'config', lab.file('prometheus-check.yml', prometheusConfig(lab.plan, rules))]);
  },
);

test(
  'nft-balancer.sh balances each service over the instances keepalived reports MASTER, and refuses what it cannot use',
  { skip: !canLab },
  () => {
    const ns = NetworkNamespace.create('cluster-nft');
    try {
      const conf = lab.file('nft-only.conf', balancerConf(lab.plan, 'addr'));
      const state = path.join(lab.dir, 'nft-only-state');
      const notify = (...args: string[]): string => ns.exec(NFT_BALANCER_SCRIPT, [conf, state, ...args]);
      const rules = (): string[] =>
        ns
          .exec('nft', ['list', 'table', 'ip', 'shardvpn_lb'])
          .split('\n')
          .filter((l) => l.includes('dnat'))
          .map((l) => l.trim());
      notify();
      assert.deepEqual(rules(), [], 'no server up yet: nothing balanced');
      for (const instance of ['n1_udp', 'n2_udp', 'n3_udp', 'n2_tcp']) notify('INSTANCE', instance, 'MASTER', '100');
      assert.deepEqual(rules(), [
        'ip daddr 10.230.0.10 udp dport 1194 dnat to jhash ip saddr mod 3 map { 0 : 10.231.1.2, 1 : 10.231.2.2, 2 : 10.231.3.2 }',
        'ip daddr 10.230.0.10 tcp dport 443 dnat to jhash ip saddr mod 1 map { 0 : 10.231.2.2 }',
      ]);
      notify('INSTANCE', 'n2_udp', 'FAULT', '100');
      notify('INSTANCE', 'n2_tcp', 'STOP', '100');
      assert.deepEqual(rules(), [
        'ip daddr 10.230.0.10 udp dport 1194 dnat to jhash ip saddr mod 2 map { 0 : 10.231.1.2, 1 : 10.231.3.2 }',
      ]);
      notify('INSTANCE', 'n2_udp', 'BACKUP', '100');
      assert.equal(rules().length, 1, 'BACKUP is not up');

      const refused = spawnSync('ip', ['netns', 'exec', ns.name, NFT_BALANCER_SCRIPT, conf, state, 'INSTANCE', '../x', 'MASTER', '100'], {
        encoding: 'utf8',
      });
      assert.equal(refused.status, 1);
      assert.match(refused.stderr, /bad instance name '\.\.\/x'/);
      const noVip = lab.file('nft-novip.conf', 'hash addr\nreal n1_udp udp 1194 10.231.1.2\n');
      const missing = spawnSync('ip', ['netns', 'exec', ns.name, NFT_BALANCER_SCRIPT, noVip, state], { encoding: 'utf8' });
      assert.equal(missing.status, 1);
      assert.match(missing.stderr, /no 'vip' line/);
    } finally {
      ns.remove();
    }
  },
);

/** `shardvpn load` in the clients namespace against the VIP; ends with SIGTERM. */
function startLoad(profile: string, clients: number, json: string): LabProcess {
  const args = ['load', '--profile', profile, '--clients', String(clients), '--rate', '30', '--threads', '1'];
  args.push('--duration', '80', '--handshake-timeout', '30', '--reconnect', '--json', json, '--quiet');
  return lab.spawn(lab.clients, process.execPath, [BIN, ...args], `shardvpn load ${path.basename(profile)}`);
}

async function report(load: LabProcess, json: string): Promise<LoadReport> {
  assert.equal(await load.stop('SIGTERM', 15_000), 0, load.log().slice(-2000));
  return JSON.parse(readFileSync(json, 'utf8')) as LoadReport;
}

const total = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0);

test(
  'a node stops: its UDP and TCP clients reconnect to the other two within ping-restart, the others keep their sessions and their pings',
  { skip: !canLab, timeout: 150_000 },
  async (t) => {
    const keepalived = lab.startKeepalived();
    const prometheus = lab.startPrometheus();
    await lab.startServers();
    await lab.waitBalanced(3);

    // A stock openvpn client through the VIP: the node it lands on stays up, and it pings on.
    const real = lab.spawn(lab.clients, 'openvpn', ['--config', lab.profile(UDP_SERVICE)], 'openvpn client');
    await real.waitFor(/Initialization Sequence Completed/, 20_000);
    const first = await lab.nodeMetric(UDP_SERVICE, 'shardvpn_connected_clients');
    const home = lab.nodes.find((n) => first.get(n.name) === 1)!;
    assert.ok(home !== undefined && total(first) === 1, JSON.stringify([...first]));

    const udpJson = path.join(lab.dir, 'load-udp.json');
    const tcpJson = path.join(lab.dir, 'load-tcp.json');
    const udpLoad = startLoad(lab.profile(UDP_SERVICE), UDP_CLIENTS, udpJson);
    const tcpLoad = startLoad(lab.profile(TCP_SERVICE), TCP_CLIENTS, tcpJson);
    const expected = new Map([
      [UDP_SERVICE, UDP_CLIENTS + 1],
      [TCP_SERVICE, TCP_CLIENTS],
    ]);
    // Says what the generators saw when a wait fails: which clients did not come, and why.
    const explain = async (error: unknown): Promise<Error> => {
      const seen = [];
      for (const [load, json] of [
        [udpLoad, udpJson],
        [tcpLoad, tcpJson],
      ] as const) {
        const r = await report(load, json);
        seen.push(JSON.stringify({ ...r, handshakeMs: undefined, traffic: undefined }));
      }
      const udp = JSON.stringify([...(await lab.nodeMetric(UDP_SERVICE, 'shardvpn_connected_clients', lab.runningNodes()))]);
      return new Error(`${(error as Error).message}: udp ${udp}\n${seen.join('\n')}\n${lab.balancer.exec('nft', ['list', 'ruleset'])}`);
    };
    try {
      for (const [service, n] of expected)
        await until(
          `${n} ${service.proto} clients over the nodes`,
          async () => total(await lab.nodeMetric(service, 'shardvpn_connected_clients')) === n,
          40_000,
        );
    } catch (error) {
      throw await explain(error);
    }
    const clientsBefore = new Map<typeof UDP_SERVICE, Map<string, number>>();
    const handshakesBefore = new Map<typeof UDP_SERVICE, Map<string, number>>();
    for (const service of expected.keys()) {
      clientsBefore.set(service, await lab.nodeMetric(service, 'shardvpn_connected_clients'));
      handshakesBefore.set(service, await lab.nodeMetric(service, 'shardvpn_handshakes_completed_total'));
      for (const node of lab.nodes)
        assert.ok(
          clientsBefore.get(service)!.get(node.name)! > 0,
          `${service.proto}: ${node.name} got no clients: ${JSON.stringify([...clientsBefore.get(service)!])}\n${lab.balancer.exec('nft', ['list', 'ruleset'])}\n${keepalived
            .log()
            .split('\n')
            .filter((l) => /FAULT|MASTER/.test(l))
            .join('\n')}`,
        );
    }
    const victim = lab.nodes.find((n) => n !== home)!;
    const survivors: LabNode[] = lab.nodes.filter((n) => n !== victim);

    // 40 pings at 5/s from the real client to its server's tunnel address, across the failover.
    const ping = lab.spawn(
      lab.clients,
      'ping',
      ['-c', '40', '-i', '0.2', '-w', '30', nodePool(home.index, UDP_SERVICE).serverAddress],
      'ping',
    );
    await new Promise((r) => setTimeout(r, 1000));
    const stoppedAt = Date.now();
    assert.deepEqual(await lab.stopNode(victim), [0, 0]);
    await lab.waitBalanced(2);
    const unbalancedS = (Date.now() - stoppedAt) / 1000;
    try {
      for (const [service, n] of expected)
        await until(
          `${n} ${service.proto} clients on the survivors`,
          async () => total(await lab.nodeMetric(service, 'shardvpn_connected_clients', survivors)) === n,
          30_000,
        );
    } catch (error) {
      throw await explain(error);
    }
    const reconnectedS = (Date.now() - stoppedAt) / 1000;

    for (const service of expected.keys()) {
      const clients = await lab.nodeMetric(service, 'shardvpn_connected_clients', survivors);
      const handshakes = await lab.nodeMetric(service, 'shardvpn_handshakes_completed_total', survivors);
      let grew = 0;
      for (const node of survivors) {
        const before = clientsBefore.get(service)!.get(node.name)!;
        const added = clients.get(node.name)! - before;
        // Every handshake a survivor completed since is a newcomer: none of its own clients started over.
        assert.equal(handshakes.get(node.name)! - handshakesBefore.get(service)!.get(node.name)!, added, `${service.proto} ${node.name}`);
        assert.ok(added >= 0, `${service.proto} ${node.name} lost clients`);
        grew += added;
      }
      assert.equal(
        grew,
        clientsBefore.get(service)!.get(victim.name)!,
        `${service.proto}: the survivors took exactly the stopped node's clients`,
      );
      t.diagnostic(
        `${service.proto}: before ${JSON.stringify([...clientsBefore.get(service)!])}, after ${JSON.stringify([...clients])} (${victim.name} stopped)`,
      );
    }
    t.diagnostic(
      `balancer down to 2 nodes ${unbalancedS.toFixed(1)} s after the stop, every client back after ${reconnectedS.toFixed(1)} s`,
    );

    assert.equal(await ping.stop('SIGTERM', 35_000), 0, ping.log());
    assert.match(ping.log(), /40 packets transmitted, 40 received/);
    assert.doesNotMatch(real.log(), /Inactivity timeout|SIGUSR1/);

    // Prometheus: the victim is down, and the cluster rule is the sum of what the nodes say.
    await prometheus.waitFor(/Server is ready to receive web requests/, 30_000);
    const query = async (promql: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> => {
      const [body] = await lab.fetch([`${PROMETHEUS}/api/v1/query?query=${encodeURIComponent(promql)}`]);
      return (JSON.parse(body!) as { data: { result: { metric: Record<string, string>; value: [number, string] }[] } }).data.result;
    };
    const all = UDP_CLIENTS + 1 + TCP_CLIENTS;
    await until(
      'the recording rule to count every client on the survivors',
      async () => Number((await query('cluster:shardvpn_connected_clients:sum'))[0]?.value[1]) === all,
      20_000,
    );
    await until(
      'Prometheus to see the stopped node down',
      async () => (await query(`up{node="${victim.name}"} == 0`)).length === 2,
      20_000,
    );
    const perNode = await query('node:shardvpn_connected_clients:sum');
    const udpNow = await lab.nodeMetric(UDP_SERVICE, 'shardvpn_connected_clients', survivors);
    const tcpNow = await lab.nodeMetric(TCP_SERVICE, 'shardvpn_connected_clients', survivors);
    for (const node of survivors) {
      const sample = perNode.find((s) => s.metric.node === node.name);
      assert.equal(Number(sample?.value[1]), udpNow.get(node.name)! + tcpNow.get(node.name)!, node.name);
    }
    assert.equal(Number((await query('service:shardvpn_connected_clients:sum{service="tcp"}'))[0]?.value[1]), TCP_CLIENTS);

    // The load generators' own account: exactly the stopped node's clients lost and regained a session.
    for (const [service, load, json, n] of [
      [UDP_SERVICE, udpLoad, udpJson, UDP_CLIENTS],
      [TCP_SERVICE, tcpLoad, tcpJson, TCP_CLIENTS],
    ] as const) {
      const r = await report(load, json);
      const lost = clientsBefore.get(service)!.get(victim.name)!;
      assert.equal(r.connected, n, JSON.stringify(r.failureDetails));
      assert.equal(r.failed, 0, JSON.stringify(r.failureDetails));
      assert.equal(r.disconnected, lost, JSON.stringify(r.failureDetails));
      assert.equal(r.reconnects, lost);
      assert.equal(r.connectedAtEnd, n);
      t.diagnostic(
        `${service.proto}: ${r.reconnects} reconnected (${r.reconnectFailures} attempts failed), from loss to new session p50 ${r.reconnectMs.p50} ms, max ${r.reconnectMs.max} ms`,
      );
    }
    assert.equal(await keepalived.stop(), 0, keepalived.log().slice(-2000));
  },
);

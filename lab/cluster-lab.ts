// A shardvpn cluster in network namespaces: a balancer namespace holding the virtual address,
// N node namespaces each running one shardvpn server per service, and a clients namespace.
//
//   clients 10.230.0.2 --- lbv0 10.230.0.1 + VIP 10.230.0.10 [balancer] lbnI 10.231.I.1 --- 10.231.I.2 node I
//
// The balancer forwards, and DNATs new flows to the VIP over the healthy nodes with nftables
// (deploy/cluster/nft-balancer.sh, driven by keepalived's health checks); conntrack keeps each
// flow on its node, and the nodes route their replies back through it. Each node's servers take
// their own slice of tunnel addresses. Processes are stopped by PID and the namespaces removed
// in cleanup(), even when a test fails.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import {
  CLUSTER_RULES,
  NFT_BALANCER_SCRIPT,
  balancerConf,
  keepalivedNftConf,
  prometheusConfig,
  type ClusterNode,
  type ClusterPlan,
  type ClusterService,
} from './cluster-config';
import { NetworkNamespace, runNodeIn } from './netns';
import { makeTestPki, type TestPki } from './test-pki';
import { BIN, track, type LabProcess } from './vpn-lab';

export const CLUSTER_VIP = '10.230.0.10';
const CLIENTS_ADDRESS = '10.230.0.2';
const BALANCER_CLIENT_SIDE = '10.230.0.1';
export const PROMETHEUS = 'http://127.0.0.1:9090';

export const UDP_SERVICE: ClusterService = { proto: 'udp', port: 1194, metricsPort: 9188 };
export const TCP_SERVICE: ClusterService = { proto: 'tcp', port: 443, metricsPort: 9189 };

/** Node i's (1-based) tunnel network for a service: a /22 each, no two alike. */
export function nodePool(i: number, service: ClusterService): { network: string; serverAddress: string } {
  const second = service.proto === 'udp' ? 240 : 241;
  return { network: `10.${second}.${i * 4}.0 255.255.252.0`, serverAddress: `10.${second}.${i * 4}.1` };
}

// Fetches URLs inside a namespace and prints their bodies as a JSON array (node's fetch).
const FETCH_ALL =
  'Promise.all(process.argv.slice(1).map((u) => fetch(u).then(async (r) => { if (!r.ok) throw new Error(`${u}: ${r.status}`); return r.text(); })))' +
  '.then((b) => process.stdout.write(JSON.stringify(b)), (e) => { console.error(String(e)); process.exit(1); });';

/** The sum over every label set of one metric in a Prometheus text exposition. */
export function metricSum(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

export interface ClusterLabOptions {
  readonly nodes: number;
  readonly services: readonly ClusterService[];
  /** The servers' keepalive (ping, ping-restart), pushed to the clients. */
  readonly keepalive: readonly [number, number];
  readonly maxClients?: number;
}

export interface LabNode extends ClusterNode {
  readonly index: number;
  readonly ns: NetworkNamespace;
}

export class ClusterLab {
  balancer!: NetworkNamespace;
  clients!: NetworkNamespace;
  readonly nodes: LabNode[] = [];
  readonly plan: ClusterPlan;
  readonly dir: string;
  readonly pki: TestPki;
  readonly tlsCrypt: string;
  /** Running servers by keepalived instance name (node_proto). */
  readonly servers = new Map<string, LabProcess>();
  private readonly processes: LabProcess[] = [];
  private readonly namespaces: NetworkNamespace[] = [];

  private constructor(private readonly options: ClusterLabOptions) {
    this.dir = mkdtempSync(path.join(os.tmpdir(), 'shardvpn-cluster-'));
    this.pki = makeTestPki();
    this.tlsCrypt = path.join(this.dir, 'tc.key');
    execFileSync('openvpn', ['--genkey', 'tls-crypt', this.tlsCrypt], { stdio: 'ignore' });
    const nodes = Array.from({ length: options.nodes }, (_, i) => ({ name: `n${i + 1}`, address: `10.231.${i + 1}.2` }));
    this.plan = { vip: CLUSTER_VIP, nodes, services: options.services };
  }

  private build(): void {
    this.balancer = this.namespace('cluster-lb');
    this.clients = this.namespace('cluster-cl');
    this.balancer.exec('sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
    this.clients.ip(['link', 'add', 'lbc0', 'type', 'veth', 'peer', 'name', 'lbv0']);
    this.clients.ip(['link', 'set', 'lbv0', 'netns', this.balancer.name]);
    this.clients.ip(['addr', 'add', `${CLIENTS_ADDRESS}/24`, 'dev', 'lbc0']);
    this.clients.ip(['link', 'set', 'lbc0', 'up']);
    this.clients.ip(['route', 'add', 'default', 'via', BALANCER_CLIENT_SIDE]);
    this.balancer.ip(['addr', 'add', `${BALANCER_CLIENT_SIDE}/24`, 'dev', 'lbv0']);
    this.balancer.ip(['addr', 'add', `${CLUSTER_VIP}/32`, 'dev', 'lbv0']);
    this.balancer.ip(['link', 'set', 'lbv0', 'up']);
    for (const [k, { name, address }] of this.plan.nodes.entries()) {
      const i = k + 1;
      const ns = this.namespace(`cluster-n${i}`);
      ns.ip(['link', 'add', 'lbup0', 'type', 'veth', 'peer', 'name', `lbn${i}`]);
      ns.ip(['link', 'set', `lbn${i}`, 'netns', this.balancer.name]);
      ns.ip(['addr', 'add', `${address}/24`, 'dev', 'lbup0']);
      ns.ip(['link', 'set', 'lbup0', 'up']);
      ns.ip(['route', 'add', 'default', 'via', `10.231.${i}.1`]);
      this.balancer.ip(['addr', 'add', `10.231.${i}.1/24`, 'dev', `lbn${i}`]);
      this.balancer.ip(['link', 'set', `lbn${i}`, 'up']);
      this.nodes.push({ index: i, name, address, ns });
    }
  }

  /** Builds the namespaces; on failure removes what was made. */
  static async create(options: ClusterLabOptions): Promise<ClusterLab> {
    const lab = new ClusterLab(options);
    try {
      lab.build();
    } catch (error) {
      await lab.cleanup();
      throw error;
    }
    return lab;
  }

  private namespace(prefix: string): NetworkNamespace {
    const ns = NetworkNamespace.create(prefix);
    this.namespaces.push(ns);
    return ns;
  }

  file(name: string, text: string): string {
    const file = path.join(this.dir, name);
    writeFileSync(file, text);
    return file;
  }

  private tlsLines(role: 'server' | 'client'): string {
    const f = this.pki.files;
    return role === 'server'
      ? `ca ${f.ca}\ncert ${f.serverCert}\nkey ${f.serverKey}\ntls-crypt ${this.tlsCrypt}\n`
      : `ca ${f.ca}\ncert ${f.clientCert}\nkey ${f.clientKey}\nremote-cert-tls server\ntls-crypt ${this.tlsCrypt}\n`;
  }

  /** A node's server config for one service: its own pool slice, one worker, the shared PKI. */
  serverConfig(node: LabNode, service: ClusterService): string {
    const [ping, restart] = this.options.keepalive;
    return (
      `port ${service.port}\nproto ${service.proto === 'udp' ? 'udp4' : 'tcp4-server'}\ndev tun\ntopology subnet\n` +
      `server ${nodePool(node.index, service).network}\nkeepalive ${ping} ${restart}\nworkers 1\nduplicate-cn\n` +
      `max-clients ${this.options.maxClients ?? 1024}\n${this.tlsLines('server')}` +
      `metrics-listen ${node.address} ${service.metricsPort}\nverb 3\n`
    );
  }

  /** Starts every node's servers (all at once) and waits until each serves. */
  async startServers(): Promise<void> {
    await Promise.all(this.nodes.map((node) => this.startNode(node)));
  }

  /** Starts (or starts again) one node's servers and waits until they serve. */
  async startNode(node: LabNode): Promise<void> {
    const starting: Promise<unknown>[] = [];
    for (const service of this.options.services) {
      const instance = `${node.name}_${service.proto}`;
      const file = this.file(`${instance}.conf`, this.serverConfig(node, service));
      const proc = track(`shardvpn ${instance}`, node.ns.spawn(process.execPath, [BIN, '--config', file]));
      this.processes.push(proc);
      this.servers.set(instance, proc);
      starting.push(proc.waitFor(/Initialization Sequence Completed/, 30_000));
    }
    await Promise.all(starting);
  }

  /** The nodes whose servers are all still running. */
  runningNodes(): LabNode[] {
    return this.nodes.filter((n) => this.options.services.every((s) => this.servers.get(`${n.name}_${s.proto}`)?.exited() === false));
  }

  /** Stops a node's servers with SIGTERM (by PID) and resolves with their exit codes. */
  async stopNode(node: LabNode): Promise<(number | null)[]> {
    return Promise.all(this.options.services.map((s) => this.servers.get(`${node.name}_${s.proto}`)!.stop('SIGTERM', 8000)));
  }

  /**
   * Writes the balancer's files, creates its (empty) nftables table, and starts keepalived with
   * one vrrp_instance per real server. Resolves once keepalived runs; the servers join the
   * rules as their instances become MASTER (see waitBalanced).
   */
  startKeepalived(): LabProcess {
    const stateDir = path.join(this.dir, 'lb-state');
    mkdirSync(stateDir);
    const conf = this.file('balancer.conf', balancerConf(this.plan, 'addr-port'));
    this.balancer.exec(NFT_BALANCER_SCRIPT, [conf, stateDir]);
    const keepalivedConf = this.file(
      'keepalived.conf',
      keepalivedNftConf(this.plan, { balancerConf: conf, stateDir, vrrpInterface: 'lbv0' }),
    );
    const run = (name: string): string => path.join(this.dir, name);
    const proc = track(
      'keepalived',
      this.balancer.spawn('keepalived', [
        ...['--dont-fork', '--log-console', '--log-detail', '--no-syslog', '--vrrp', '--use-file', keepalivedConf],
        ...['--pid', run('keepalived.pid'), '--vrrp_pid', run('vrrp.pid'), '--checkers_pid', run('checkers.pid')],
      ]),
    );
    this.processes.push(proc);
    return proc;
  }

  /** How many real servers the balancer's rule for a service spreads over (0: no rule). */
  balancedCount(service: ClusterService): number {
    const rules = this.balancer.exec('nft', ['list', 'table', 'ip', 'shardvpn_lb']);
    const m = new RegExp(`${service.proto} dport ${service.port} dnat to jhash .* mod (\\d+) map`).exec(rules);
    return m === null ? 0 : Number(m[1]);
  }

  async waitBalanced(count: number, timeoutMs = 20_000): Promise<void> {
    await until(
      `the balancer to spread over ${count} servers per service`,
      () => this.options.services.every((s) => this.balancedCount(s) === count),
      timeoutMs,
    );
  }

  /** Prometheus in the balancer's namespace, scraping every server with `node` and `service` labels. */
  startPrometheus(): LabProcess {
    const rules = this.file('cluster-rules.yml', CLUSTER_RULES);
    const config = this.file('prometheus.yml', prometheusConfig(this.plan, rules));
    const tsdb = path.join(this.dir, 'tsdb');
    const proc = track(
      'prometheus',
      this.balancer.spawn('prometheus', [`--config.file=${config}`, `--storage.tsdb.path=${tsdb}`, '--web.listen-address=127.0.0.1:9090']),
    );
    this.processes.push(proc);
    return proc;
  }

  /** GETs URLs from inside the balancer's namespace. */
  async fetch(urls: readonly string[]): Promise<string[]> {
    const result = await runNodeIn(this.balancer, '-e', [FETCH_ALL, ...urls], 15_000);
    if (result.code !== 0) throw new Error(`GET ${urls.join(' ')}: exit ${result.code}: ${result.stderr}`);
    return JSON.parse(result.stdout) as string[];
  }

  /** One metric, summed over its labels, from each running node's server of a service (by node name). */
  async nodeMetric(service: ClusterService, name: string, nodes: readonly LabNode[] = this.nodes): Promise<Map<string, number>> {
    const bodies = await this.fetch(nodes.map((n) => `http://${n.address}:${service.metricsPort}/metrics`));
    return new Map(nodes.map((n, i) => [n.name, metricSum(bodies[i]!, name)]));
  }

  /** A client profile for the VIP. */
  profile(service: ClusterService, extra = ''): string {
    const proto = service.proto === 'udp' ? 'udp' : 'tcp-client';
    return this.file(
      `client-${service.proto}.ovpn`,
      `client\ndev tun\nproto ${proto}\nremote ${CLUSTER_VIP} ${service.port}\nnobind\n${this.tlsLines('client')}${extra}verb 3\n`,
    );
  }

  /** Any program in one of the lab's namespaces, stopped by PID in cleanup. */
  spawn(ns: NetworkNamespace, command: string, args: readonly string[], name = command): LabProcess {
    const proc = track(name, ns.spawn(command, args));
    this.processes.push(proc);
    return proc;
  }

  async cleanup(): Promise<void> {
    await Promise.all(this.processes.map((p) => p.stop('SIGTERM', 5000)));
    for (const ns of this.namespaces) ns.remove();
    this.pki.cleanup();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

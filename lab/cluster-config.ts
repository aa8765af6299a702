// The configuration files of a shardvpn cluster behind a load balancer, written from one plan:
// the nftables balancer's conf (deploy/cluster/nft-balancer.sh reads it), keepalived's config for
// that balancer (one vrrp_instance per real server, driven by its health check), keepalived's
// config for the IPVS variant (virtual_server ... lb_algo sh), and Prometheus's scrape config and
// recording rules. The cluster lab runs them; docs/cluster.md shows what they produce.
import path from 'node:path';

/** The shell scripts keepalived runs: deploy/cluster in this checkout. */
export const DEPLOY_CLUSTER = path.join(__dirname, '..', '..', 'deploy', 'cluster');
export const HEALTH_SCRIPT = path.join(DEPLOY_CLUSTER, 'shardvpn-health.sh');
export const NFT_BALANCER_SCRIPT = path.join(DEPLOY_CLUSTER, 'nft-balancer.sh');

export interface ClusterNode {
  /** Short name: the Prometheus `node` label and the first half of its keepalived instances' names. */
  readonly name: string;
  /** The address the balancer reaches it at (its shardvpn servers listen here). */
  readonly address: string;
}

/** One virtual service: every node runs a shardvpn server for it. */
export interface ClusterService {
  readonly proto: 'udp' | 'tcp';
  readonly port: number;
  /** Each node's server serves /metrics here (metrics-listen NODE-ADDRESS PORT). */
  readonly metricsPort: number;
}

export interface ClusterPlan {
  readonly vip: string;
  readonly nodes: readonly ClusterNode[];
  readonly services: readonly ClusterService[];
}

/** The keepalived vrrp_instance that stands for one node's server of one service. */
export function instanceName(node: ClusterNode, service: ClusterService): string {
  return `${node.name}_${service.proto}`;
}

function* realServers(plan: ClusterPlan): Generator<{ node: ClusterNode; service: ClusterService; instance: string }> {
  for (const service of plan.services) for (const node of plan.nodes) yield { node, service, instance: instanceName(node, service) };
}

/**
 * nft-balancer.sh's conf. `hash addr-port` spreads clients that share one address (NAT, or a
 * load generator) over the nodes; `addr` keeps every client of an address on one node.
 */
export function balancerConf(plan: ClusterPlan, hash: 'addr' | 'addr-port'): string {
  const lines = [`vip ${plan.vip}`, `hash ${hash}`];
  for (const r of realServers(plan)) lines.push(`real ${r.instance} ${r.service.proto} ${r.service.port} ${r.node.address}`);
  return lines.join('\n') + '\n';
}

export interface NftKeepalivedPaths {
  /** nft-balancer.sh's conf (balancerConf) and state folder. */
  readonly balancerConf: string;
  readonly stateDir: string;
  /** An interface of the balancer with an IPv4 address: VRRP needs one to run its instances on. */
  readonly vrrpInterface: string;
}

/**
 * keepalived for the nftables balancer. Without IPVS keepalived's checkers cannot run (its
 * checker process stops at start when IPVS is missing), so each real server gets a vrrp_instance
 * whose track_script is the server's health check: the instance is MASTER while the check passes
 * and FAULT once it fails `fall` times, and every change runs nft-balancer.sh, which rewrites
 * the DNAT rules. A check gets 2 s and a server is out after 3 failures in a row: a busy server
 * that answers late once must not be taken out, since its flows are then forgotten (its clients
 * start over). The instances' router ids are private to the balancer: nothing else on the
 * interface may use them.
 */
export function keepalivedNftConf(plan: ClusterPlan, paths: NftKeepalivedPaths, routerIdBase = 101): string {
  const out = ['global_defs {', '  router_id shardvpn_lb', '  script_user root', '  enable_script_security', '}', ''];
  let vrid = routerIdBase;
  for (const r of realServers(plan)) {
    out.push(
      `vrrp_script chk_${r.instance} {`,
      `  script "${HEALTH_SCRIPT} ${r.node.address} ${r.service.metricsPort}"`,
      '  interval 1',
      '  timeout 2',
      '  fall 3',
      '  rise 2',
      '}',
      `vrrp_instance ${r.instance} {`,
      '  state BACKUP',
      `  interface ${paths.vrrpInterface}`,
      `  virtual_router_id ${vrid++}`,
      '  priority 100',
      '  advert_int 1',
      '  track_script {',
      `    chk_${r.instance}`,
      '  }',
      `  notify "${NFT_BALANCER_SCRIPT} ${paths.balancerConf} ${paths.stateDir}"`,
      '}',
      '',
    );
  }
  return out.join('\n');
}

/**
 * keepalived for an IPVS balancer (kernels with CONFIG_IP_VS): one virtual_server per service,
 * source hashing (`sh-port` too, for clients behind one address), NAT forwarding (the nodes route
 * their replies back through the balancer), and a health checker per real server: the same
 * /metrics check for UDP, and a TCP connect on top of it for TCP.
 */
export function keepalivedIpvsConf(plan: ClusterPlan): string {
  const out = ['global_defs {', '  router_id shardvpn_lb', '  script_user root', '  enable_script_security', '}', ''];
  for (const service of plan.services) {
    out.push(
      `virtual_server ${plan.vip} ${service.port} {`,
      '  delay_loop 2',
      '  lb_algo sh',
      '  sh-port',
      '  lb_kind NAT',
      `  protocol ${service.proto.toUpperCase()}`,
    );
    for (const node of plan.nodes) {
      out.push(
        `  real_server ${node.address} ${service.port} {`,
        '    weight 1',
        '    MISC_CHECK {',
        `      misc_path "${HEALTH_SCRIPT} ${node.address} ${service.metricsPort}"`,
        '      misc_timeout 3',
        '    }',
      );
      if (service.proto === 'tcp') out.push('    TCP_CHECK {', '      connect_timeout 3', '    }');
      out.push('  }');
    }
    out.push('}', '');
  }
  return out.join('\n');
}

/** Prometheus: every node's servers, labelled with `node` and `service`, and the cluster rules. */
export function prometheusConfig(plan: ClusterPlan, rulesFile: string, intervalS = 1): string {
  const out = [
    'global:',
    `  scrape_interval: ${intervalS}s`,
    `  evaluation_interval: ${intervalS}s`,
    'rule_files:',
    `  - ${rulesFile}`,
    'scrape_configs:',
    '  - job_name: shardvpn',
    '    static_configs:',
  ];
  for (const r of realServers(plan)) {
    out.push(
      `      - targets: ['${r.node.address}:${r.service.metricsPort}']`,
      `        labels: { node: ${r.node.name}, service: ${r.service.proto} }`,
    );
  }
  return out.join('\n') + '\n';
}

/** Recording rules for cluster totals and an alert for a node Prometheus cannot scrape. */
export const CLUSTER_RULES = `groups:
  - name: shardvpn-cluster
    rules:
      - record: cluster:shardvpn_connected_clients:sum
        expr: sum(shardvpn_connected_clients{job="shardvpn"})
      - record: service:shardvpn_connected_clients:sum
        expr: sum by (service) (shardvpn_connected_clients{job="shardvpn"})
      - record: node:shardvpn_connected_clients:sum
        expr: sum by (node) (shardvpn_connected_clients{job="shardvpn"})
      - record: cluster:shardvpn_handshakes_completed:rate1m
        expr: sum(rate(shardvpn_handshakes_completed_total{job="shardvpn"}[1m]))
      - alert: ShardvpnNodeDown
        expr: up{job="shardvpn"} == 0
        for: 30s
        labels:
          severity: page
        annotations:
          summary: "shardvpn {{ $labels.service }} server on {{ $labels.node }} is not answering /metrics"
`;

// Prometheus metrics (prom-client) served by the main thread. Every value is read at scrape time
// from the shards' SharedArrayBuffer counters, the rings' headers, the pool and the client
// table: no message to a shard per scrape, nothing added to the packet path.
import http from 'node:http';

import {
  collectDefaultMetrics,
  Counter,
  Gauge,
  Registry,
  type Metric,
  type MetricObjectWithValues,
  type MetricType,
  type MetricValueWithName,
} from 'prom-client';

import { COUNTER, HANDSHAKE_BUCKETS, type ShardCounterName } from '../../shared/counters';
import type { TunOffloadState } from '../../shared/native';
import type { PacketRing } from '../../shared/ring';
import type { ClientRecord } from './server-view';
import { VERSION } from '../version';
import { UNDEF_COMMON_NAME } from '../../shared/session/peer-verify';

export interface MetricsSource {
  /** `restarts`: how often the shard's worker died (or was restarted) and was replaced. */
  shards(): readonly { counters: Float64Array; toTun: PacketRing; fromTun: PacketRing; restarts: number }[];
  pump(): { tunRead: number; noRoute: number; tunWriteDrops: number; ringFull: number; clientToClient: number };
  /** The main thread's TUN descriptor's offload counts (tun-offload). */
  tunOffload(): TunOffloadState;
  pool(): { used: number; free: number } | null;
  clients(): readonly ClientRecord[];
  perClient: boolean;
}

const FAILURE_REASONS: readonly [string, ShardCounterName][] = [
  ['bad_hmac', 'handshakeFailBadHmac'],
  ['tls_error', 'handshakeFailTls'],
  ['certificate_rejected', 'handshakeFailCert'],
  ['auth_failed', 'handshakeFailAuth'],
  ['timeout', 'handshakeFailTimeout'],
];

const DROP_REASONS: readonly [string, ShardCounterName][] = [
  ['replay', 'dropReplay'],
  ['bad_tag', 'dropBadTag'],
  ['unknown_peer_id', 'dropUnknownPeer'],
  ['source_address', 'dropSourceAddress'],
  ['ring_full', 'dropRingFull'],
  ['tun_write', 'dropTunWrite'],
  ['tun_offload', 'dropTunOffload'],
  ['short', 'dropShort'],
  ['bad_key_id', 'dropBadKeyId'],
  ['not_connected', 'dropNotConnected'],
  ['control', 'dropControl'],
  ['control_malformed', 'dropControlMalformed'],
  ['control_bad_hmac', 'dropControlBadHmac'],
  ['control_cookie', 'dropControlCookie'],
  ['control_overload', 'dropControlOverload'],
  ['link_send', 'dropLinkSend'],
  ['packet_id_exhausted', 'dropPacketIdExhausted'],
  ['blocked_ipv6', 'dropBlockedIpv6'],
  ['tcp_slow_reader', 'dropTcpSlowReader'],
];

type Read = (set: (labels: Record<string, string>, value: number) => void) => void;

/** A collect() that empties the metric and records each value `read` reports with `put`. */
function collectFrom<M extends Counter | Gauge>(
  read: Read,
  put: (metric: M, labels: Record<string, string>, value: number) => void,
): (this: M) => void {
  return function (this: M): void {
    this.reset();
    read((labels, value) => put(this, labels, value));
  };
}

/**
 * A counter whose value is an absolute total read at scrape time. inc() refuses negative values;
 * inc(labels, 0) still shows the label set, at 0.
 */
function totalCounter(registry: Registry, name: string, help: string, labelNames: string[], read: Read): void {
  new Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    collect: collectFrom<Counter>(read, (c, labels, value) => c.inc(labels, value > 0 ? value : 0)),
  });
}

function gauge(registry: Registry, name: string, help: string, labelNames: string[], read: Read): void {
  new Gauge({
    name,
    help,
    labelNames,
    registers: [registry],
    collect: collectFrom<Gauge>(read, (g, labels, value) => g.set(labels, value)),
  });
}

/**
 * The handshake duration histogram. prom-client's Histogram can only observe(), but the buckets
 * are counted by the shards in shared memory, so this metric reports their sums as they are.
 */
function handshakeHistogram(source: MetricsSource): {
  name: string;
  help: string;
  get(): Promise<MetricObjectWithValues<MetricValueWithName<string>>>;
  reset(): void;
} {
  const name = 'shardvpn_handshake_duration_seconds';
  const help = 'Time from the first control packet of a session to its established tunnel.';
  return {
    name,
    help,
    reset: () => undefined,
    get: async () => {
      const shards = source.shards();
      const sum = (index: number): number => shards.reduce((total, shard) => total + shard.counters[index], 0);
      const bucket = (le: number | string, value: number): MetricValueWithName<string> => ({
        labels: { le },
        value,
        metricName: `${name}_bucket`,
      });
      const values: MetricValueWithName<string>[] = [
        ...HANDSHAKE_BUCKETS.map((le, i) => bucket(le, sum(COUNTER.handshakeBucket0 + i))),
        bucket('+Inf', sum(COUNTER.handshakeBucketInf)),
        { labels: {}, value: sum(COUNTER.handshakeSecondsSum), metricName: `${name}_sum` },
        { labels: {}, value: sum(COUNTER.handshakeBucketInf), metricName: `${name}_count` },
      ];
      // The registry reads name, help, type and values; 'histogram' is MetricType.Histogram's value.
      return { name, help, type: 'histogram' as unknown as MetricType, aggregator: 'sum', collect: () => undefined, values };
    },
  };
}

export function createRegistry(source: MetricsSource): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const perShard =
    (name: ShardCounterName): Read =>
    (set) =>
      source.shards().forEach((shard, index) => set({ shard: String(index) }, shard.counters[COUNTER[name]]));

  gauge(registry, 'shardvpn_build_info', 'shardvpn build information (always 1).', ['version', 'node', 'openssl'], (set) =>
    set({ version: VERSION, node: process.versions.node, openssl: process.versions.openssl }, 1),
  );
  gauge(registry, 'shardvpn_connected_clients', 'Clients with an established tunnel.', [], (set) => set({}, source.clients().length));
  gauge(
    registry,
    'shardvpn_shard_connected_clients',
    'Clients with an established tunnel, per shard.',
    ['shard'],
    perShard('clientsConnected'),
  );
  totalCounter(
    registry,
    'shardvpn_handshakes_started_total',
    'Control sessions created (after the stateless cookie exchange).',
    ['shard'],
    perShard('handshakesStarted'),
  );
  totalCounter(
    registry,
    'shardvpn_handshakes_completed_total',
    'Handshakes that reached an established tunnel.',
    ['shard'],
    perShard('handshakesCompleted'),
  );
  totalCounter(registry, 'shardvpn_handshakes_failed_total', 'Failed handshakes by reason.', ['shard', 'reason'], (set) =>
    source.shards().forEach((shard, index) => {
      for (const [reason, name] of FAILURE_REASONS) set({ shard: String(index), reason }, shard.counters[COUNTER[name]]);
    }),
  );
  registry.registerMetric(handshakeHistogram(source) as unknown as Metric);
  for (const [metric, inName, outName, help] of [
    ['shardvpn_link_bytes_total', 'linkBytesIn', 'linkBytesOut', 'UDP payload bytes on the link (OpenVPN packets).'],
    ['shardvpn_link_packets_total', 'linkPacketsIn', 'linkPacketsOut', 'UDP datagrams on the link.'],
    ['shardvpn_tun_bytes_total', 'tunBytesIn', 'tunBytesOut', 'Tunnel packet bytes (in: from TUN to clients; out: from clients to TUN).'],
    ['shardvpn_tun_packets_total', 'tunPacketsIn', 'tunPacketsOut', 'Tunnel packets (in: from TUN to clients; out: from clients to TUN).'],
  ] as const) {
    totalCounter(registry, metric, help, ['shard', 'direction'], (set) =>
      source.shards().forEach((shard, index) => {
        set({ shard: String(index), direction: 'in' }, shard.counters[COUNTER[inName]]);
        set({ shard: String(index), direction: 'out' }, shard.counters[COUNTER[outName]]);
      }),
    );
  }
  totalCounter(
    registry,
    'shardvpn_dropped_packets_total',
    'Packets dropped, by shard and reason (shard "main": the TUN side).',
    ['shard', 'reason'],
    (set) => {
      source.shards().forEach((shard, index) => {
        for (const [reason, name] of DROP_REASONS) set({ shard: String(index), reason }, shard.counters[COUNTER[name]]);
      });
      const pump = source.pump();
      set({ shard: 'main', reason: 'no_route' }, pump.noRoute);
      set({ shard: 'main', reason: 'tun_write' }, pump.tunWriteDrops);
      set({ shard: 'main', reason: 'ring_full' }, pump.ringFull);
      set({ shard: 'main', reason: 'tun_offload' }, source.tunOffload().readDrops);
    },
  );
  gauge(registry, 'shardvpn_tcp_connections', 'Open TCP connections (proto tcp-server), per shard.', ['shard'], perShard('tcpConnections'));
  totalCounter(
    registry,
    'shardvpn_tcp_connections_accepted_total',
    'TCP connections accepted (proto tcp-server).',
    ['shard'],
    perShard('tcpAccepted'),
  );
  totalCounter(
    registry,
    'shardvpn_tcp_connections_closed_total',
    'TCP connections the server closed: a bad frame length, no session within hand-window, or over the limit at accept.',
    ['shard', 'reason'],
    (set) =>
      source.shards().forEach((shard, index) => {
        set({ shard: String(index), reason: 'bad_length' }, shard.counters[COUNTER.dropTcpFraming]);
        set({ shard: String(index), reason: 'idle' }, shard.counters[COUNTER.dropTcpIdle]);
        set({ shard: String(index), reason: 'limit' }, shard.counters[COUNTER.dropTcpLimit]);
      }),
  );
  totalCounter(registry, 'shardvpn_client_to_client_packets_total', 'Packets passed between clients without the TUN device.', [], (set) =>
    set({}, source.pump().clientToClient),
  );
  totalCounter(
    registry,
    'shardvpn_tun_queue_packets_total',
    'Packets read from each TUN queue: "main" is the main thread\'s (the only one with tun-queues single), a number a shard\'s.',
    ['queue'],
    (set) => {
      set({ queue: 'main' }, source.pump().tunRead);
      source.shards().forEach((shard, index) => set({ queue: String(index) }, shard.counters[COUNTER.tunQueueReads]));
    },
  );
  totalCounter(
    registry,
    'shardvpn_tun_queue_crossings_total',
    'Packets a shard read from its own TUN queue (tun-queues shard) but did not own, handed to the main thread to route.',
    ['shard'],
    perShard('tunQueueCrossings'),
  );
  gauge(registry, 'shardvpn_ring_occupancy', 'Packets waiting in a ring.', ['shard', 'ring'], (set) =>
    source.shards().forEach((shard, index) => {
      set({ shard: String(index), ring: 'to_tun' }, shard.toTun.size);
      set({ shard: String(index), ring: 'from_tun' }, shard.fromTun.size);
    }),
  );
  totalCounter(
    registry,
    'shardvpn_stateless_replies_total',
    'Stateless HMAC-cookie replies to first packets (a flood of resets shows here).',
    ['shard'],
    perShard('statelessReplies'),
  );
  totalCounter(
    registry,
    'shardvpn_udp_gso_datagrams_total',
    'Datagrams sent inside segmented UDP messages (GSO, udp-offload).',
    ['shard'],
    perShard('udpGsoDatagrams'),
  );
  totalCounter(registry, 'shardvpn_udp_gso_messages_total', 'Segmented UDP messages sent (GSO).', ['shard'], perShard('udpGsoMessages'));
  totalCounter(
    registry,
    'shardvpn_udp_gso_fallbacks_total',
    'Segmented sends the kernel refused, sent again one datagram per message.',
    ['shard'],
    perShard('udpGsoFallbacks'),
  );
  totalCounter(
    registry,
    'shardvpn_udp_gro_messages_total',
    'Coalesced UDP messages received (GRO, udp-offload).',
    ['shard'],
    perShard('udpGroMessages'),
  );
  totalCounter(
    registry,
    'shardvpn_udp_gro_datagrams_total',
    'Datagrams split out of coalesced UDP messages (GRO).',
    ['shard'],
    perShard('udpGroDatagrams'),
  );
  totalCounter(
    registry,
    'shardvpn_udp_coalesce_waits_total',
    'Readable turns that waited udp-coalesce-usecs for more datagrams before reading.',
    ['shard'],
    perShard('udpCoalesceWaits'),
  );
  // TUN offloads: the main thread's descriptor ("main") and each shard's (its queue with
  // tun-queues shard, else the one it writes decrypted packets to).
  const perTunQueue =
    (main: (o: TunOffloadState) => number, shardCounter: ShardCounterName) =>
    (set: (labels: Record<string, string>, value: number) => void): void => {
      set({ queue: 'main' }, main(source.tunOffload()));
      source.shards().forEach((shard, index) => set({ queue: String(index) }, shard.counters[COUNTER[shardCounter]]));
    };
  totalCounter(
    registry,
    'shardvpn_tun_superpackets_read_total',
    'TCP/UDP superpackets (TSO/USO) read from the TUN device and split here (tun-offload).',
    ['queue'],
    perTunQueue((o) => o.superpackets, 'tunSuperpacketsRead'),
  );
  totalCounter(
    registry,
    'shardvpn_tun_superpacket_segments_total',
    'Packets split out of superpackets read from the TUN device.',
    ['queue'],
    perTunQueue((o) => o.segments, 'tunSuperpacketSegments'),
  );
  totalCounter(
    registry,
    'shardvpn_tun_coalesced_writes_total',
    'Coalesced TCP superpackets written to the TUN device (tun-offload).',
    ['queue'],
    perTunQueue((o) => o.coalescedWrites, 'tunCoalescedWrites'),
  );
  totalCounter(
    registry,
    'shardvpn_tun_coalesced_packets_total',
    'Packets merged into coalesced TCP superpackets written to the TUN device.',
    ['queue'],
    perTunQueue((o) => o.coalescedPackets, 'tunCoalescedPackets'),
  );
  totalCounter(
    registry,
    'shardvpn_tun_coalesce_refusals_total',
    'Coalesced superpackets the kernel refused; their packets were written one by one.',
    ['queue'],
    perTunQueue((o) => o.coalesceRefusals, 'tunCoalesceRefusals'),
  );
  totalCounter(registry, 'shardvpn_renegotiations_total', 'Data-channel key renegotiations.', ['shard'], perShard('renegotiations'));
  gauge(registry, 'shardvpn_pool_addresses', 'ifconfig pool entries by state.', ['state'], (set) => {
    const pool = source.pool();
    if (pool === null) return;
    set({ state: 'used' }, pool.used);
    set({ state: 'free' }, pool.free);
  });
  // Counted by the main thread, which replaces the worker; a dead shard cannot count its own end.
  totalCounter(
    registry,
    'shardvpn_shard_restarts_total',
    'Shard workers that died (an uncaught exception, an exit, a management shard-restart) and were replaced on their socket.',
    ['shard'],
    (set) => source.shards().forEach((shard, index) => set({ shard: String(index) }, shard.restarts)),
  );
  gauge(registry, 'shardvpn_shard_event_loop_lag_seconds', 'Event-loop lag of each shard (last second).', ['shard'], (set) =>
    source.shards().forEach((shard, index) => set({ shard: String(index) }, shard.counters[COUNTER.eventLoopLagMs] / 1000)),
  );
  gauge(
    registry,
    'shardvpn_shard_event_loop_utilization',
    'Event-loop utilization of each shard (0..1, last second).',
    ['shard'],
    perShard('eventLoopUtilization'),
  );
  gauge(
    registry,
    'shardvpn_shard_heap_size_used_bytes',
    "Used bytes of each shard's V8 heap (last second).",
    ['shard'],
    perShard('heapUsedBytes'),
  );
  gauge(
    registry,
    'shardvpn_shard_heap_size_total_bytes',
    "Committed bytes of each shard's V8 heap (last second).",
    ['shard'],
    perShard('heapTotalBytes'),
  );
  gauge(
    registry,
    'shardvpn_shard_external_memory_bytes',
    "Memory each shard's V8 heap accounts outside itself: Buffers, ArrayBuffers (last second).",
    ['shard'],
    perShard('externalMemoryBytes'),
  );
  if (source.perClient) {
    totalCounter(
      registry,
      'shardvpn_client_bytes_total',
      'Link bytes per connected client (metrics-per-client).',
      ['common_name', 'real_address', 'virtual_address', 'direction'],
      (set) => {
        for (const client of source.clients()) {
          const labels = {
            common_name: client.commonName ?? UNDEF_COMMON_NAME,
            real_address: `${client.realAddress.address}:${client.realAddress.port}`,
            virtual_address: client.virtualAddress ?? '',
          };
          set({ ...labels, direction: 'in' }, client.bytesReceived);
          set({ ...labels, direction: 'out' }, client.bytesSent);
        }
      },
    );
  }
  return registry;
}

/** Serves GET /metrics; resolves once listening. */
export function serveMetrics(registry: Registry, address: string, port: number): Promise<http.Server> {
  const server = http.createServer((request, response) => {
    if (request.method !== 'GET' || (request.url ?? '').split('?')[0] !== '/metrics') {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try GET /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => response.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (error: Error) => response.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${error.message}\n`),
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(new Error(`metrics-listen ${address} ${port}: ${error.code ?? error.message}`)),
    );
    server.listen(port, address, () => resolve(server));
  });
}

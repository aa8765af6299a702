// Per-shard counters in a SharedArrayBuffer: the shard adds, the main thread (metrics, status,
// SIGUSR2) reads at any time without a message. Float64 so byte totals never wrap; each slot has
// one writer (its shard), so plain stores suffice and readers tolerate a value one update old.

export const SHARD_COUNTERS = [
  'linkBytesIn',
  'linkBytesOut',
  'linkPacketsIn',
  'linkPacketsOut',
  'tunBytesIn',
  'tunBytesOut',
  'tunPacketsIn',
  'tunPacketsOut',
  'clientsConnected',
  'handshakesStarted',
  'handshakesCompleted',
  'handshakeFailBadHmac',
  'handshakeFailTls',
  'handshakeFailCert',
  'handshakeFailAuth',
  'handshakeFailTimeout',
  'renegotiations',
  'dropReplay',
  'dropBadTag',
  'dropUnknownPeer',
  'dropSourceAddress',
  'dropRingFull',
  'dropTunWrite',
  'dropShort',
  'dropBadKeyId',
  'dropNotConnected',
  'dropControl',
  // Control packets from an address with no session, by why they were refused (the rest of such
  // refusals count as dropControl): not a first packet a client sends, checked on the receive
  // memory before any copy; failed the tls-auth / tls-crypt check; a bad cookie echo; a reset
  // left unanswered while the shard was behind its socket (reset-reply-budget.ts).
  'dropControlMalformed',
  'dropControlBadHmac',
  'dropControlCookie',
  'dropControlOverload',
  // Datagrams the UDP socket did not take (sendmmsg stopped at a full socket buffer).
  'dropLinkSend',
  // Packets for a client not sent because its send key's packet-id ran out (renegotiation too late).
  'dropPacketIdExhausted',
  // TCP (proto tcp-server): connections open now, accepted in all, and the ones closed for a bad
  // frame length, for never starting a session within hand-window, or for not reading.
  'tcpConnections',
  'tcpAccepted',
  'dropTcpFraming',
  'dropTcpIdle',
  'dropTcpSlowReader',
  // TCP connections refused at accept: the shard already holds max-clients plus handshakes.
  'dropTcpLimit',
  // Data payloads the peer compressed (shardvpn has no decompressor) or framed wrongly.
  'dropCompressed',
  'dropBadFraming',
  // block-ipv6 on the server: IPv6 packets from clients answered with ICMPv6 no-route, not forwarded.
  'dropBlockedIpv6',
  'statelessReplies',
  // tun-queues shard: packets the shard read from its own TUN queue, and those of them it could
  // not deliver itself (another shard's client, an unknown destination, multicast for the other
  // shards) and handed to the main thread on its to-tun ring.
  'tunQueueReads',
  'tunQueueCrossings',
  // UDP offload (udp-offload): datagrams sent inside segmented GSO messages and those messages,
  // segmented sends the kernel refused (sent again one datagram per message), coalesced GRO
  // messages received and the datagrams split out of them. Copied from the socket each tick.
  'udpGsoDatagrams',
  'udpGsoMessages',
  'udpGsoFallbacks',
  'udpGroMessages',
  'udpGroDatagrams',
  // udp-coalesce-usecs: readable turns that waited for more datagrams before reading.
  'udpCoalesceWaits',
  // TUN offload (tun-offload) on the shard's TUN descriptor: superpackets read (TSO/USO) and the
  // packets split out of them, coalesced TCP superpackets written and the packets merged into
  // them, superpackets read that could not be split (dropped), superpackets the kernel refused
  // (their packets written one by one). Copied from the device each tick.
  'tunSuperpacketsRead',
  'tunSuperpacketSegments',
  'tunCoalescedWrites',
  'tunCoalescedPackets',
  'dropTunOffload',
  'tunCoalesceRefusals',
  'eventLoopLagMs',
  'eventLoopUtilization',
  // The shard's own V8 heap (each worker is an isolate of its own; the main thread's heap is in
  // the default nodejs_* metrics): used and committed bytes, and memory V8 counts outside it
  // (Buffers, ArrayBuffers). Set each second: with RSS they tell a growing JavaScript heap from
  // native memory (OpenSSL, the C heap).
  'heapUsedBytes',
  'heapTotalBytes',
  'externalMemoryBytes',
  // Handshake duration histogram: cumulative buckets (le HANDSHAKE_BUCKETS[i]), +Inf, sum.
  'handshakeBucket0',
  'handshakeBucket1',
  'handshakeBucket2',
  'handshakeBucket3',
  'handshakeBucket4',
  'handshakeBucket5',
  'handshakeBucket6',
  'handshakeBucket7',
  'handshakeBucketInf',
  'handshakeSecondsSum',
] as const;

/** Upper bounds (seconds) of the handshake duration buckets. */
export const HANDSHAKE_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

export type ShardCounterName = (typeof SHARD_COUNTERS)[number];

export const COUNTER: Readonly<Record<ShardCounterName, number>> = Object.fromEntries(
  SHARD_COUNTERS.map((name, index) => [name, index]),
) as Record<ShardCounterName, number>;

export function createCounterBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer(SHARD_COUNTERS.length * Float64Array.BYTES_PER_ELEMENT);
}

/** A typed view; index it with COUNTER.name. */
export function counterView(buffer: SharedArrayBuffer): Float64Array {
  return new Float64Array(buffer);
}

/** Counts one handshake of `seconds` into the histogram counters. */
export function observeHandshake(view: Float64Array, seconds: number): void {
  for (let i = 0; i < HANDSHAKE_BUCKETS.length; i++) {
    if (seconds <= HANDSHAKE_BUCKETS[i]) view[COUNTER.handshakeBucket0 + i]++;
  }
  view[COUNTER.handshakeBucketInf]++;
  view[COUNTER.handshakeSecondsSum] += seconds;
}

/** Name -> value, for logs and tests. */
export function readCounters(view: Float64Array): Record<ShardCounterName, number> {
  return Object.fromEntries(SHARD_COUNTERS.map((name, index) => [name, view[index]])) as Record<ShardCounterName, number>;
}

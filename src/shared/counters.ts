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
  'dropShort',
  'dropBadKeyId',
  'dropNotConnected',
  'dropControl',
  'statelessReplies',
  'eventLoopLagMs',
  'eventLoopUtilization',
] as const;

export type ShardCounterName = (typeof SHARD_COUNTERS)[number];

export const COUNTER: Readonly<Record<ShardCounterName, number>> = Object.fromEntries(SHARD_COUNTERS.map((name, index) => [name, index])) as Record<ShardCounterName, number>;

export function createCounterBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer(SHARD_COUNTERS.length * Float64Array.BYTES_PER_ELEMENT);
}

/** A typed view; index it with COUNTER.name. */
export function counterView(buffer: SharedArrayBuffer): Float64Array {
  return new Float64Array(buffer);
}

/** Name -> value, for logs and tests. */
export function readCounters(view: Float64Array): Record<ShardCounterName, number> {
  return Object.fromEntries(SHARD_COUNTERS.map((name, index) => [name, view[index]])) as Record<ShardCounterName, number>;
}

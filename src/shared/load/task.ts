// What the load generator's main thread hands each worker (one slice of simulated clients) and
// what comes back: progress messages while it runs, a SliceResult at the end. Plain data only:
// it crosses threads by structured clone.
import type { MessagePort } from 'node:worker_threads';

import type { WrapConfig } from '../session/control-wrap';
import type { PeerChecks, TlsMaterial } from '../session/types';

/** Everything a simulated client needs from the profile, already read from disk. */
export interface LoadProfile extends PeerChecks {
  readonly tls: TlsMaterial;
  readonly wrap: WrapConfig;
  readonly username: string | null;
  readonly password: string | null;
  /** Normalised --data-ciphers, our preference order. */
  readonly dataCiphers: readonly string[];
  readonly dataCiphersFallback: string | null;
  /** --auth of the profile: the CBC ciphers' HMAC digest (null: none). */
  readonly auth: string | null;
  /** Resolved server address and port. */
  readonly address: string;
  readonly family: 4 | 6;
  /** The profile's proto: UDP datagrams, or OpenVPN's framing over one TCP connection per client. */
  readonly transport: 'udp' | 'tcp';
  readonly port: number;
  /** OCC options string sent in key method 2. */
  readonly occOptions: string;
  readonly peerInfo: string;
  /** Times to send OCC_EXIT at the end; 0: off. */
  readonly explicitExitNotify: number;
  readonly handWindowMs: number;
  readonly tlsTimeoutMs: number;
}

export interface TrafficSpec {
  /** ICMP echo requests per second per client; 0: no traffic. */
  readonly pps: number;
  /** Inner IPv4 packet size in bytes (20 IP + 8 ICMP + payload). */
  readonly size: number;
  /** Echo target; null: the pushed route-gateway (or what stands for it). */
  readonly target: string | null;
  /** Bulk mode (--bandwidth): echo requests kept in flight per client, sent in batches; 0: paced by pps. */
  readonly window: number;
}

export interface SliceTask {
  readonly profile: LoadProfile;
  readonly slice: number;
  /** Global index of each client of the slice (its ICMP echo id), in start order. */
  readonly clientIndexes: readonly number[];
  /** Start offset of each client of the slice, ascending, in ms after startAt. */
  readonly startOffsetsMs: readonly number[];
  /** Date.now() at which offset 0 falls (the same for every worker). */
  readonly startAt: number;
  /** Date.now() at which the run ends (clients close, traffic stops). */
  readonly endAt: number;
  /** A client not connected this long after its first packet fails with 'timeout'. */
  readonly handshakeTimeoutMs: number;
  /** null: a lost session stays lost; else a client that loses its session starts a new one this long after. */
  readonly reconnectDelayMs: number | null;
  /** Local addresses to bind to, client index i to sources[i % length]; empty: any. */
  readonly sources: readonly string[];
  readonly traffic: TrafficSpec;
  /** Progress goes out here; a { type: 'stop' } coming in ends the run early. */
  readonly port: MessagePort;
}

export interface ProgressMessage {
  readonly type: 'progress';
  readonly slice: number;
  readonly started: number;
  readonly connected: number;
  readonly failed: number;
  /** Inner IP bytes of echo requests sent and replies received so far. */
  readonly bytesSent: number;
  readonly bytesReceived: number;
}

export interface StopMessage {
  readonly type: 'stop';
}

export interface SliceResult {
  readonly requested: number;
  readonly started: number;
  readonly connected: number;
  /** Started, neither connected nor failed when the run ended. */
  readonly unfinished: number;
  /** Unfinished clients by the last handshake step they reached. */
  readonly unfinishedStages: Record<string, number>;
  /** Connected, then lost the session before the end (server RESTART/HALT, fatal error). */
  readonly disconnected: number;
  /** Sessions started again after a loss (with reconnectDelayMs) and completed. */
  readonly reconnects: number;
  /** New attempts after a loss that failed in turn (and were tried again). */
  readonly reconnectFailures: number;
  /** From the loss being noticed to the new session's keys, ms. */
  readonly reconnect: HistogramData;
  /** Clients with a session when the run ended. */
  readonly connectedAtEnd: number;
  readonly failures: Record<string, number>;
  /** First detail line seen per failure reason (for the operator). */
  readonly failureDetails: Record<string, string>;
  /** Date.now() of this slice's first client start, or null if none started. */
  readonly firstStartAt: number | null;
  /** Date.now() of the last successful connection, or null. */
  readonly lastConnectedAt: number | null;
  /** Serialised histograms (LatencyHistogram.toJSON). */
  readonly handshake: HistogramData;
  readonly rtt: HistogramData;
  readonly echoSent: number;
  readonly echoReceived: number;
  /** Bulk mode: requests given up after the in-flight timeout while traffic ran. */
  readonly echoExpired: number;
  /** Inner IP bytes. */
  readonly bytesSent: number;
  readonly bytesReceived: number;
  /** Wall time during which this slice sent traffic, ms (first to last request). */
  readonly trafficMs: number;
  /** Data packets from the server that failed to decrypt. */
  readonly decryptErrors: number;
}

export interface HistogramData {
  readonly counts: readonly number[];
  readonly max: number;
  readonly min: number;
  readonly sum: number;
  readonly n: number;
}

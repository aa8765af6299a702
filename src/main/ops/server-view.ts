// What the operations side (status file, management interface, metrics) sees of a running
// server, and what it may ask of it. The server implements this; the operations modules and
// their tests depend only on this interface.
import type { ShardFault } from '../../shared/fault-injection';

export interface ClientRecord {
  /** OpenVPN's client id (cid): a per-process counter, one per connected client. */
  readonly cid: number;
  readonly peerId: number;
  readonly shard: number;
  /** null prints as UNDEF. */
  readonly commonName: string | null;
  readonly username: string | null;
  /** Real (outer) address and port of the client. */
  readonly realAddress: { family: 4 | 6; address: string; port: number };
  readonly virtualAddress: string | null;
  readonly virtualAddressIpv6: string | null;
  /** Link-level bytes, including OpenVPN's overhead, as OpenVPN's status counts them. */
  readonly bytesReceived: number;
  readonly bytesSent: number;
  /** Unix seconds. */
  readonly connectedSince: number;
  /** Unix seconds of the last packet from the client (routing table "Last Ref"). */
  readonly lastRef: number;
  readonly cipher: string;
  /** iroutes of this client, as `network/bits` text. */
  readonly iroutes: readonly string[];
}

export type ServerSignal = 'SIGHUP' | 'SIGUSR1' | 'SIGUSR2' | 'SIGTERM';

export interface ServerView {
  /** Version banner, e.g. "shardvpn 0.1.0 x86_64-pc-linux-gnu [SSL (OpenSSL)] [AEAD]". */
  readonly title: string;
  readonly pid: number;
  readonly statusVersion: 1 | 2 | 3;
  clients(): readonly ClientRecord[];
  /** Totals over the life of the process (management load-stats). */
  loadStats(): { nclients: number; bytesIn: number; bytesOut: number };
  /** Closes every client with this common name at once (nothing is sent); returns how many. */
  killByCommonName(commonName: string): number;
  /** Closes the client(s) at this real address and port; returns how many. */
  killByAddress(address: string, port: number): number;
  /** Sends `message` (default RESTART) to client `cid` and closes it shortly after; false if unknown. */
  clientKill(cid: number, message?: string): boolean;
  signal(signal: ServerSignal): void;
  /**
   * The management client's answer for client `cid`, key `keyId` (management-client-auth);
   * false when no such client is waiting (always, without management-client-auth, as OpenVPN).
   */
  clientAuth(cid: number, keyId: number, verdict: ManagementVerdict): boolean;
  /**
   * client-pending-auth: client `cid` (waiting for its verdict) is told to wait up to `timeoutS`
   * more and shown `extra`; false when no such client waits or its time is already up.
   */
  clientPendingAuth(cid: number, keyId: number, extra: string, timeoutS: number): boolean;
  /** The log level (management `verb`). */
  verb(): number;
  /** Sets the log level of the main thread and every shard, restarted ones included. */
  setVerb(level: number): void;
  /** Replaces shard worker `index` on its socket (its clients reconnect); false if there is none. */
  restartShard(index: number): boolean;
  /**
   * A test aid that exists only with SHARDVPN_FAULT_INJECTION=1: shard `index` fails on purpose
   * (src/shared/fault-injection.ts); false if there is no such shard or fault injection is off.
   */
  injectShardFault(index: number, fault: ShardFault): boolean;
  /** Subscribes to client lifecycle events (management notifications); returns an unsubscribe. */
  onClientEvent(listener: (event: ClientEvent) => void): () => void;
}

/** client-auth (with its client-connect style config text, maybe empty) or client-deny. */
export type ManagementVerdict = { allow: true; config: string } | { allow: false; reason: string; clientReason?: string };

export type ClientEvent =
  /** A client passed TLS and key method 2; env holds OpenVPN's client-connect environment. */
  | { readonly type: 'connect'; readonly cid: number; readonly keyId: number; readonly env: Readonly<Record<string, string>> }
  | { readonly type: 'established'; readonly cid: number; readonly env: Readonly<Record<string, string>> }
  | { readonly type: 'disconnect'; readonly cid: number; readonly env: Readonly<Record<string, string>> }
  | { readonly type: 'address'; readonly cid: number; readonly address: string; readonly primary: boolean };

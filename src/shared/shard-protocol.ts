// Messages between the main thread and a shard worker (over the worker's MessagePort). Packets
// never travel here: they go through the SharedArrayBuffer rings. These are control events.
import type { AuthTokenPolicy, AuthTokenState } from './protocol/auth-token';
import type { BlockIpv6Answer } from './protocol/block-ipv6';
import type { ShardFault } from './fault-injection';
import type { MssfixSetting } from './protocol/mss';
import type { PushOptions } from './protocol/push-options';
import type { WrapConfig } from './session/control-wrap';
import type { PeerChecks, TlsMaterial } from './session/types';
import type { FramingKind } from './protocol/compress-framing';
import type { DataCipherName } from './protocol/data-format';

/** Everything a shard needs to serve clients; structured-clone safe. */
/** The peer checks (remote-cert-tls, ns-cert-type, verify-x509-name, ...) come from PeerChecks. */
export interface ShardConfig extends PeerChecks {
  shard: number;
  shardCount: number;
  /**
   * The socket the main thread opened for this shard (same process, so the fd is valid): a UDP
   * socket, or with `transport` tcp a listening socket (a copy of the descriptor: the worker's
   * server closes it when the worker ends).
   */
  socketFd: number;
  socketFamily: 4 | 6;
  transport: 'udp' | 'tcp';
  /** comp-lzo / compress: the framing of every data payload (compress-framing.ts). */
  compressFraming: FramingKind;
  /** --tcp-nodelay: TCP_NODELAY on every client connection. */
  tcpNodelay: boolean;
  /** udp-offload: UDP GSO and GRO on the shard's socket where the kernel has them. */
  udpOffload: boolean;
  /** udp-coalesce-usecs: receive coalescing on the shard's socket (0: off). */
  udpCoalesceUsecs: number;
  toTunRing: SharedArrayBuffer;
  fromTunRing: SharedArrayBuffer;
  counters: SharedArrayBuffer;
  /**
   * The main thread's TUN device. Without client-to-client a shard writes its clients' packets
   * to it directly (one thread hop fewer); with it they go through the to-tun ring, so the main
   * thread can hand packets for other clients straight to their shards.
   */
  tunFd: number;
  tunName: string;
  /**
   * tun-queues shard: this shard's own queue of the multi-queue TUN device (opened and kept by
   * the main thread, so a replacement worker takes the same one); the shard reads it and writes
   * its clients' packets to it. -1: the single-queue path.
   */
  tunQueueFd: number;
  clientToClient: boolean;
  /** HMAC key of the stateless session-id cookie, shared by all shards. */
  cookieKey: Uint8Array;
  tls: TlsMaterial;
  wrap: WrapConfig;
  /** --verify-client-cert: whether clients must, may or do not show a certificate. */
  verifyClientCert: 'none' | 'optional' | 'require';
  /** The global push list (`push` directives and what `server` / `keepalive` add). */
  push: string[];
  /** Server's OCC options string (sent in key method 2). */
  occOptions: string;
  dataCiphers: DataCipherName[];
  /** The CBC ciphers' HMAC digest (`auth`); null for `auth none`. */
  auth: string | null;
  dataCiphersFallback?: string;
  handWindowS: number;
  tlsTimeoutS: number;
  renegSec: number;
  /** reneg-sec's min; absent: OpenVPN's default spread. */
  renegSecMin?: number;
  renegBytes: number;
  renegPkts: number;
  tranWindowS: number;
  /** Server-side keepalive (ping / ping-restart seconds; 0: off). */
  pingS: number;
  pingRestartS: number;
  replayWindow: number;
  replayTime: number;
  /** Send RESTART to clients when the server stops (explicit-exit-notify on the server). */
  explicitExitNotify: number;
  maxClientsPerShard: number;
  /** --inactive SECONDS BYTES on the server: a client whose tunnel carried less for that long is dropped (0: off). */
  inactive: { seconds: number; bytes: number };
  /** --session-timeout on the server: a client instance is dropped this long after it began (0: never). */
  sessionTimeoutS: number;
  /** --block-ipv6 on the server: IPv6 from clients is answered with ICMPv6 no-route (null: forwarded). */
  blockIpv6: BlockIpv6Answer | null;
  /** auth-user-pass-verify is set: client-auth carries the client's password to the main thread. */
  userPassVerify: boolean;
  /** auth-user-pass-verify or management-client-auth: logins are checked. */
  userPassChecked: boolean;
  /**
   * auth-user-pass-optional: where logins are checked, a client that sends no username or no
   * password is let through with both cleared (the checker decides) instead of refused.
   */
  authUserPassOptional: boolean;
  /**
   * --auth-gen-token: the HMAC key (auth-gen-token-secret's, or one made for this run) and the
   * token policy; null without it.
   */
  authGenToken: (AuthTokenPolicy & { key: Uint8Array; externalAuth: boolean }) | null;
  /** --mssfix: TCP SYNs crossing the tunnel get their MSS lowered to fit. */
  mssfix: MssfixSetting;
  verb: number;
}

/** What the main thread decided for an authenticated client. */
export interface ClientAssignment {
  /** Per-client push options (ifconfig, ifconfig-ipv6, ...) besides the global push list. */
  push: PushOptions;
  /** Virtual addresses the client may send from (source check), and iroutes as CIDR text. */
  virtual4: string | null;
  virtual6: string | null;
  iroutes4: { network: string; bits: number }[];
  iroutes6: { network: string; bits: number }[];
  /** push-reset in the client's client-config-dir file: the global push list is not sent. */
  pushReset: boolean;
  /** push-remove in the client's file or client-connect output: global push options starting with these are not sent. */
  pushRemove: readonly string[];
  /** session-timeout from the client's client-config-dir file or client-connect output (overrides the server's). */
  sessionTimeoutS?: number;
}

export type MainToShard =
  | { type: 'client-accept'; peerId: number; assignment: ClientAssignment }
  | { type: 'client-reject'; peerId: number; reason: string }
  /** Close a client: send `message` (RESTART / HALT / null for nothing) first. */
  | { type: 'client-kill'; peerId: number; message: string | null }
  /** Stop serving: tell clients (RESTART) when `notify`, then answer 'stopped'. */
  | { type: 'stop'; notify: boolean }
  | { type: 'stats-request'; id: number }
  /** Once a minute: ask this thread's V8 heap to shrink (server-timers.ts). */
  | { type: 'shrink-heap' }
  /** management client-pending-auth: AUTH_PENDING and INFO_PRE to a client awaiting its verdict. */
  | { type: 'client-pending-auth'; peerId: number; extra: string; timeoutS: number }
  /** The management `verb N` command: log at this level from now on. */
  | { type: 'set-verb'; verb: number }
  /**
   * A hitless reload (SIGHUP): clients that connect from now on get these settings; connected
   * ones keep their session. The per-shard parts (socket, rings, counters) stay as they are.
   */
  | { type: 'reconfigure'; template: ShardSettings }
  /** A test aid that exists only with SHARDVPN_FAULT_INJECTION=1 (src/shared/fault-injection.ts): fail on purpose. */
  | { type: 'fault'; fault: ShardFault };

/** The parts of ShardConfig that come from the configuration, the same for every shard. */
export type ShardSettings = Omit<
  ShardConfig,
  'shard' | 'shardCount' | 'socketFd' | 'socketFamily' | 'tunQueueFd' | 'toTunRing' | 'fromTunRing' | 'counters'
>;

/** Numbers per client in a 'stats' message's rows. */
export const STATS_ROW = 4;

export interface ClientStats {
  peerId: number;
  commonName: string | null;
  username: string | null;
  realAddress: { family: 4 | 6; address: string; port: number };
  bytesReceived: number;
  bytesSent: number;
  connectedSince: number;
  lastRef: number;
  cipher: string;
}

export type ShardToMain =
  | { type: 'ready' }
  /** A client passed TLS and key method 2: the main thread assigns addresses (or rejects). */
  | {
      type: 'client-auth';
      peerId: number;
      commonName: string;
      username: string | null;
      /** Only with auth-user-pass-verify (ShardConfig.userPassVerify); null otherwise. */
      password: string | null;
      peerInfo: string | null;
      realAddress: { family: 4 | 6; address: string; port: number };
      keyId: number;
      /** Hex serial number of the client's certificate (a reload checks it against a new CRL). */
      certSerial: string | null;
      /**
       * With auth-gen-token: what the password said as a token ('Initial' when it is none) and the
       * session id of the token the client will get (OpenVPN's session_state and session_id).
       */
      authToken?: { state: AuthTokenState; sessionId: string };
    }
  | { type: 'client-established'; peerId: number; cipher: string; stats: ClientStats }
  | { type: 'client-gone'; peerId: number; reason: string; bytesReceived: number; bytesSent: number }
  /**
   * The per-second counters of the clients whose traffic moved since the last report, as
   * STATS_ROW numbers each (peer-id, bytes received, bytes sent, last ref) in a transferred
   * buffer, and the new real address of those that floated. With thousands of idle clients a
   * structured clone of every client's stats object each second cost the main thread more than
   * anything else it did at rest.
   */
  | { type: 'stats'; id: number; rows: Float64Array; floated: { peerId: number; realAddress: ClientStats['realAddress'] }[] }
  /** `category`: a kind of repetitive message, for --mute. */
  | { type: 'log'; level: number; message: string; category?: string }
  | { type: 'stopped' };

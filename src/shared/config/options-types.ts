// The typed result of a config: OpenVPN 2.6 option names in camelCase, with 2.6's defaults
// (options.c init_options and the man page).
import type { DnsOptions } from '../protocol/dns-options';
import type { MssfixSetting } from '../protocol/mss';

/**
 * udp-coalesce-usecs by default: a stock client's datagrams, one per system call at its end, come
 * a few per wake-up otherwise; 100 us more per hop under a stream, none when idle.
 */
export const DEFAULT_UDP_COALESCE_USECS = 100;
/** The longest coalescing wait (10 ms): beyond it a wait would be a stall. */
export const MAX_UDP_COALESCE_USECS = 10_000;
/**
 * heap-shrink-interval by default: once a minute each thread's V8 heap is asked for a
 * memory-reducing collection (a renegotiating shard's committed heap otherwise creeps up).
 */
export const DEFAULT_HEAP_SHRINK_SECONDS = 60;
/** A day: the longest interval heap-shrink-interval takes. */
export const MAX_HEAP_SHRINK_SECONDS = 86_400;

export interface Where {
  readonly file: string;
  readonly line: number;
}

/** Key or certificate material, naming where it came from so the loader can say so. */
export type FileRef =
  | { kind: 'file'; path: string; resolved: string; file: string; line: number }
  | { kind: 'inline'; text: string; file: string; line: number };

/** A plain path (status, writepid, client-config-dir): as written and resolved against `cd`. */
export interface PathRef {
  path: string;
  resolved: string;
}

/** `tcp` alone becomes tcp-server or tcp-client once the mode is known. */
export type Transport = 'udp' | 'tcp-server' | 'tcp-client';
export type AddressFamily = 'any' | 'ipv4' | 'ipv6';

export interface ProtoSpec {
  transport: Transport | 'tcp';
  family: AddressFamily;
}

export type Topology = 'net30' | 'p2p' | 'subnet';
export type KeyDirection = 0 | 1;

/** --mssfix; default 1492 counted as a full UDP packet size ("mtu"), as in 2.6. */
export type Mssfix = MssfixSetting;

/** Options that a `<connection>` block may set, one entry per way to reach a peer. */
export interface ConnectionFields {
  proto: ProtoSpec;
  local?: string;
  /** `port`, `lport`: the port to bind. */
  localPort: number;
  localPortDefined: boolean;
  /** `port`, `rport`: the peer's port, unless a `remote` names one. */
  remotePort: number;
  /** false after `nobind`, and on a client that does not ask to bind (2.6). */
  bind: boolean;
  /** `bind` given explicitly. */
  bindDefined: boolean;
  /** `bind ipv6only`: an IPv6 socket with IPV6_V6ONLY on (no IPv4 peers). */
  bindIpv6Only: boolean;
  connectRetry: number;
  connectRetryMaxWait: number;
  connectTimeout: number;
  /** Times to send the exit notification; 0: off. */
  explicitExitNotify: number;
  tunMtu: number;
  tunMtuDefined: boolean;
  mssfix: Mssfix;
  float: boolean;
  tlsAuth?: FileRef;
  tlsCrypt?: FileRef;
  tlsCryptV2?: FileRef;
  /** undefined: bidirectional (OpenVPN's default). */
  keyDirection?: KeyDirection;
  /** --http-proxy: the TCP connection goes through this proxy's CONNECT (proxy.c). */
  httpProxy?: HttpProxy;
  /** --http-proxy-option lines (before or after http-proxy, as OpenVPN takes them). */
  httpProxyOptions?: HttpProxyOptions;
}

/** --http-proxy SERVER PORT [AUTHFILE [AUTH-METHOD]]. */
export interface HttpProxy {
  host: string;
  port: number;
  /** Basic authentication's username and password: a file of two lines, or asked on the terminal ('stdin'). */
  auth?: ({ kind: 'file' } & PathRef) | { kind: 'stdin' };
}

/** --http-proxy-option VERSION / AGENT / CUSTOM-HEADER. */
export interface HttpProxyOptions {
  /** The CONNECT request's HTTP version (1.0 unless set). */
  version?: string;
  /** The User-Agent header. */
  agent?: string;
  /** Sent as they are, after CONNECT. */
  headers: { name: string; content?: string }[];
}

export interface RemoteEntry extends Where {
  host: string;
  port?: number;
  proto?: ProtoSpec;
}

/** One way to reach the peer: a `remote` line or a `<connection>` block, fully resolved. */
export interface ConnectionEntry extends ConnectionFields, Where {
  /** Peer host; undefined on a server or a p2p side that waits. */
  remote?: string;
}

export interface Route {
  network: string;
  netmask?: string;
  gateway?: string;
  metric?: number;
}

export interface RouteIpv6 {
  network: string;
  gateway?: string;
  metric?: number;
}

export type CompressFraming =
  | 'none' // no compression framing at all (2.6's default)
  | 'comp-lzo-no' // `comp-lzo no`: LZO-style header byte, never compressed
  | 'stub'
  | 'stub-v2'
  | 'lzo'
  | 'lz4'
  | 'lz4-v2'
  | 'migrate';

export interface Compression {
  framing: CompressFraming;
  /** `allow-compression`; in 2.6 'no' unless compression is configured (then 'asym'). */
  allow: 'no' | 'asym' | 'yes';
  /** Set by `allow-compression` rather than derived. */
  allowExplicit: boolean;
  /** `comp-lzo` without argument or `adaptive`. */
  adaptive: boolean;
  /** Where framing was set, for a clear message from the layer that refuses it. */
  where?: Where;
}

export interface Unsupported extends Where {
  directive: string;
  message: string;
}

export interface Options extends ConnectionFields {
  mode: 'p2p' | 'server';
  client: boolean;
  pull: boolean;
  tlsServer: boolean;
  tlsClient: boolean;

  // server helpers (expanded into the fields below by buildOptions, as helper.c does)
  server?: { network: string; netmask: string; nopool: boolean } & Where;
  serverIpv6?: { network: string; netbits: number } & Where;

  // peers
  remotes: RemoteEntry[];
  remoteRandom: boolean;
  /** Seconds, or Infinity for `resolv-retry infinite` (the default). */
  resolvRetry: number;
  /** 0: retry forever. */
  connectRetryMax: number;
  /** From `<connection>` blocks, or one per `remote`, or one built from the global fields. */
  connections: ConnectionEntry[];

  // device and addresses
  dev?: string;
  devType?: 'tun' | 'tap' | 'null';
  topology: Topology;
  ifconfig?: { local: string; remoteNetmask: string };
  ifconfigIpv6?: { local: string; netbits: number; remote: string };
  ifconfigPool?: { start: string; end: string; netmask?: string };
  ifconfigIpv6Pool?: { base: string; netbits: number };
  ifconfigPoolPersist?: PathRef & { refreshSeconds: number };
  ifconfigPush?: { local: string; remoteNetmask: string; alias?: string };
  ifconfigIpv6Push?: { local: string; netbits: number; remote?: string };
  /** Server (tap or topology subnet): ifconfig-push addresses must be inside this network. */
  pushIfconfigConstraint?: { network: string; netmask: string };

  // push and routes
  push: string[];
  routes: Route[];
  routesIpv6: RouteIpv6[];
  /** --route-metric: the metric of a route (IPv4 or IPv6) that gives none. */
  routeMetric?: number;
  routeGateway?: string;
  routeNopull: boolean;
  routeNoexec: boolean;
  ifconfigNoexec: boolean;
  pullFilters: { action: 'accept' | 'ignore' | 'reject'; text: string }[];
  redirectGateway?: { ipv4: boolean; ipv6: boolean; flags: string[] };
  dhcpOptions: { type: string; value?: string }[];

  // multi-client server
  clientToClient: boolean;
  duplicateCn: boolean;
  maxClients: number;
  clientConfigDir?: PathRef;
  ccdExclusive: boolean;
  /** --client-connect: run when a client is admitted; may write per-client config to its $1. */
  clientConnect?: string;
  /** --client-disconnect: run when a client leaves. */
  clientDisconnect?: string;
  /** --learn-address: told of each address and iroute a client gets and loses. */
  learnAddress?: string;
  /** --management-client-auth: every new client waits for client-auth / client-deny. */
  managementClientAuth: boolean;
  iroutes: { network: string; netmask: string }[];
  iroutesIpv6: string[];

  // timers
  keepalive?: { interval: number; timeout: number };
  ping: number;
  /** ping-restart / ping-exit seconds (after keepalive expansion); 0: off. */
  pingRecTimeout: number;
  pingRecAction: 'none' | 'restart' | 'exit';
  pingTimerRem: boolean;
  renegSec: number;
  renegSecMin?: number;
  /** -1: not set (OpenVPN then limits 64-bit-block ciphers only). */
  renegBytes: number;
  renegPkts: number;
  handWindow: number;
  tranWindow: number;
  tlsTimeout: number;
  inactive?: { seconds: number; bytes: number };
  /** --session-timeout N: a session ends N seconds after it began (0: never). */
  sessionTimeout?: number;
  /** --remap-usr1: a SIGUSR1 acts as this signal. */
  remapUsr1?: 'SIGHUP' | 'SIGTERM';

  // TLS and keys
  ca?: FileRef;
  cert?: FileRef;
  key?: FileRef;
  /** 'none': no DH (ECDHE only). */
  dh?: FileRef | 'none';
  extraCerts?: FileRef;
  pkcs12?: FileRef;
  crlVerify?: { ref: FileRef; dir: boolean };
  remoteCertTls?: 'server' | 'client';
  /** --ns-cert-type: OpenSSL's purpose check of the peer certificate for this TLS role. */
  nsCertType?: 'server' | 'client';
  remoteCertEku?: string;
  /**
   * --remote-cert-ku: the peer certificate must have a keyUsage extension, and with values its
   * usages must include one of them (hex, OpenVPN's byte: digitalSignature 0x80 ... encipherOnly 0x01).
   */
  remoteCertKu?: number[];
  verifyX509Name?: { name: string; type: 'subject' | 'name' | 'name-prefix' };
  /**
   * --peer-fingerprint (each line and block adds): SHA256 fingerprints of the certificates a peer
   * may show, "AB:CD:..." upper case; without `ca` they replace the chain check (2.6's PKI-less set-up).
   */
  peerFingerprints?: string[];
  /** --verify-hash: fingerprints (upper-case hex pairs) one of which the level-1 certificate must have. */
  verifyHash?: { algo: 'sha1' | 'sha256'; hashes: string[] };
  /**
   * --x509-username-field: where a peer's name comes from instead of the subject's CN (subject
   * attributes, `serialNumber` for the certificate's serial, `ext:subjectAltName` for its last
   * email); several are joined with '_'.
   */
  x509UsernameField?: string[];
  /** Default 1.2 (2.6 sets it when neither bound is given). */
  tlsVersionMin: '1.0' | '1.1' | '1.2' | '1.3';
  tlsVersionMinOrHighest: boolean;
  tlsVersionMax?: '1.0' | '1.1' | '1.2' | '1.3';
  tlsCipher?: string;
  tlsCiphersuites?: string;
  tlsCertProfile?: string;
  tlsGroups?: string;
  ecdhCurve?: string;
  tlsCryptV2ForceCookie: boolean;
  verifyClientCert: 'none' | 'optional' | 'require';
  usernameAsCommonName: boolean;
  /** --auth-user-pass-optional: clients may leave out the username and password. */
  authUserPassOptional: boolean;
  /** --block-ipv6: IPv6 into the tunnel is answered with ICMPv6 no-route instead (client: from TUN; server: from clients). */
  blockIpv6: boolean;
  /** --push-remove (client-config-dir, client-connect): push option prefixes this client is not sent. */
  pushRemove: string[];
  /** --route-ipv6-gateway: the gateway of IPv6 routes that name none. */
  routeIpv6Gateway?: string;
  /** --static-challenge TEXT ECHO: a second factor asked on the terminal, sent with the password. */
  staticChallenge?: { text: string; echo: boolean };
  /** --dns (2.6): search domains and DNS servers for the client's scripts. */
  dns?: DnsOptions;
  authUserPassVerify?: { script: string; method: 'via-env' | 'via-file' };
  /**
   * --auth-gen-token [lifetime] [renewal-time] [external-auth]: a session token pushed to clients
   * whose login passed, taken instead of the password on reconnects (renewalS 0 until the
   * config's end: then reneg-sec).
   */
  authGenToken?: { lifetimeS: number; renewalS: number; externalAuth: boolean };
  /** --auth-gen-token-secret: the tokens' HMAC key, so they outlive a restart. */
  authGenTokenSecret?: FileRef;
  secret?: FileRef;

  // data channel
  auth: string;
  /** As written by `cipher`; undefined when absent. */
  cipher?: string;
  /** `data-ciphers` / `ncp-ciphers`, or 2.6's default AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305. */
  dataCiphers: string[];
  dataCiphersFallback?: string;
  replayWindow: number;
  replayTime: number;
  noReplay: boolean;
  compression: Compression;
  peerId?: number;

  // client credentials
  authUserPass?: FileRef | { kind: 'stdin' };
  authNocache: boolean;
  authRetry?: 'none' | 'nointeract' | 'interact';

  // process and host
  cd?: string;
  daemon: boolean;
  persistTun: boolean;
  persistKey: boolean;
  user?: string;
  group?: string;
  verb: number;
  mute: number;
  writepid?: PathRef;
  status?: PathRef & { intervalSeconds: number };
  statusVersion: 1 | 2 | 3;
  log?: PathRef & { append: boolean };
  management?: { address: string; port: string; unix: boolean; passwordFile?: string };
  scriptSecurity: number;
  /** --tmp-dir: where auth-user-pass-verify via-file writes its file (default: the system's). */
  tmpDir?: string;
  up?: string;
  down?: string;
  /** --route-up: run after the routes are added; --route-pre-down: before they are removed. */
  routeUp?: string;
  routePreDown?: string;
  /** --down-pre: the down script runs before the device is closed instead of after. */
  downPre?: boolean;
  sndbuf?: number;
  /** tcp-nodelay / socket-flags TCP_NODELAY: no Nagle delay on the TCP link. */
  tcpNodelay: boolean;
  rcvbuf?: number;
  /** --mark: SO_MARK on the link socket (policy routing). */
  mark?: number;
  /** --bind-dev: SO_BINDTODEVICE on the link socket (a device or VRF). */
  bindDev?: string;
  txqueuelen?: number;
  setenv: Record<string, string>;
  ignoreUnknownOptions: string[];

  // shardvpn's own
  workers?: number;
  metricsListen?: { address: string; port: number };
  metricsPerClient: boolean;
  /** SIGHUP on a server: apply the new config in place (hitless) or restart as OpenVPN does. */
  reloadMode: 'hitless' | 'restart';
  /** Hitless reload: what happens to a client whose own settings changed. */
  reloadChangedClients: 'restart' | 'drop';
  /** UDP GSO on send and GRO on receive where the kernel has them (`udp-offload yes|no`). */
  udpOffload: boolean;
  /** `udp-coalesce-usecs N`: wait up to N microseconds for more datagrams while they stream in (0: off). */
  udpCoalesceUsecs: number;
  /** `heap-shrink-interval N` (server): every N seconds each thread's V8 heap is asked to shrink (0: never). */
  heapShrinkSeconds: number;
  /** TUN offloads (`tun-offload yes|no`): TSO/USO superpackets split on read, TCP segments coalesced on write. */
  tunOffload: boolean;
  /**
   * `tun-queues single|shard` (server): one TUN queue read by the main thread, or a multi-queue
   * device with a queue per shard (and one for the main thread) that each shard reads itself.
   */
  tunQueues: 'single' | 'shard';

  /** Parsed but not supported by shardvpn: the runtime refuses to start with the first. */
  unsupported: Unsupported[];

  /** Where each directive was last given (errors found after parsing name file:line). */
  positions: Record<string, Where>;
  /** The top-level config file (or `argv`): where a missing directive is reported. */
  source: string;
}

/** OpenVPN 2.6's built-in defaults, before any directive. */
export function defaultOptions(): Options {
  return {
    mode: 'p2p',
    client: false,
    pull: false,
    tlsServer: false,
    tlsClient: false,
    proto: { transport: 'udp', family: 'any' },
    localPort: 1194,
    localPortDefined: false,
    remotePort: 1194,
    bind: true,
    bindDefined: false,
    bindIpv6Only: false,
    connectRetry: 1,
    connectRetryMaxWait: 300,
    connectTimeout: 120,
    explicitExitNotify: 0,
    tunMtu: 1500,
    tunMtuDefined: false,
    mssfix: { size: 1492, encap: true, fixed: false },
    float: false,
    remotes: [],
    remoteRandom: false,
    resolvRetry: Infinity,
    connectRetryMax: 0,
    connections: [],
    topology: 'net30',
    push: [],
    routes: [],
    routesIpv6: [],
    routeNopull: false,
    routeNoexec: false,
    ifconfigNoexec: false,
    pullFilters: [],
    dhcpOptions: [],
    clientToClient: false,
    duplicateCn: false,
    maxClients: 1024,
    ccdExclusive: false,
    managementClientAuth: false,
    iroutes: [],
    iroutesIpv6: [],
    ping: 0,
    pingRecTimeout: 0,
    pingRecAction: 'none',
    pingTimerRem: false,
    renegSec: 3600,
    renegBytes: -1,
    renegPkts: 0,
    handWindow: 60,
    tranWindow: 3600,
    tlsTimeout: 2,
    tlsVersionMin: '1.2',
    tlsVersionMinOrHighest: false,
    tlsCryptV2ForceCookie: false,
    verifyClientCert: 'require',
    usernameAsCommonName: false,
    authUserPassOptional: false,
    blockIpv6: false,
    pushRemove: [],
    auth: 'SHA1',
    dataCiphers: ['AES-256-GCM', 'AES-128-GCM', 'CHACHA20-POLY1305'],
    replayWindow: 64,
    replayTime: 15,
    noReplay: false,
    compression: { framing: 'none', allow: 'no', allowExplicit: false, adaptive: false },
    authNocache: false,
    daemon: false,
    persistTun: false,
    persistKey: false,
    verb: 1,
    mute: 0,
    statusVersion: 1,
    scriptSecurity: 1,
    setenv: {},
    ignoreUnknownOptions: [],
    metricsPerClient: false,
    reloadMode: 'hitless',
    reloadChangedClients: 'restart',
    udpOffload: true,
    udpCoalesceUsecs: DEFAULT_UDP_COALESCE_USECS,
    heapShrinkSeconds: DEFAULT_HEAP_SHRINK_SECONDS,
    tunOffload: true,
    tunQueues: 'shard',
    tcpNodelay: false,
    unsupported: [],
    positions: {},
    source: '(config)',
  };
}

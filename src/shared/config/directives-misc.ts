// Directives of the process (logging, privileges, scripts, management), compression, and
// shardvpn's own additions.

import * as net from 'node:net';
import { CompressFraming, MAX_HEAP_SHRINK_SECONDS, MAX_UDP_COALESCE_USECS } from './options-types';
import { DirectiveSpec, DirectiveTable, fail, flag, int, integer, oneOf, port } from './registry';

function ignored(why: string): DirectiveSpec {
  return {
    min: 0,
    max: 15,
    set(ctx, d) {
      ctx.warn(d, `${d.name} is ignored: ${why}`);
    },
  };
}

/** An OpenVPN option shardvpn does not offer: the server or client refuses to start, saying so. */
function refused(why: string): DirectiveSpec {
  return {
    min: 0,
    max: 15,
    set(ctx, d) {
      ctx.unsupported(d, why);
    },
  };
}

export const miscDirectives: DirectiveTable = {
  // `cd` also moves the base of includes (lexer) and of relative file names (buildOptions).
  cd: {
    min: 1,
    max: 1,
    set() {
      /* applied by buildOptions */
    },
  },
  daemon: {
    min: 0,
    max: 1,
    set(ctx) {
      ctx.o.daemon = true;
    },
  },
  'persist-tun': flag('persistTun'),
  'persist-key': flag('persistKey'),
  user: {
    min: 1,
    max: 1,
    set(ctx, _d, [u]) {
      ctx.o.user = u as string;
    },
  },
  group: {
    min: 1,
    max: 1,
    set(ctx, _d, [g]) {
      ctx.o.group = g as string;
    },
  },
  verb: integer('verb', 'verbosity', 0, 11),
  mute: integer('mute', 'count', 0, 0x7fffffff),
  writepid: {
    min: 1,
    max: 1,
    set(ctx, d, [f]) {
      ctx.o.writepid = ctx.pathRef(d, f as string, {});
    },
  },
  status: {
    min: 1,
    max: 2,
    set(ctx, d, [f, n]) {
      ctx.o.status = ctx.pathRef(d, f as string, { intervalSeconds: n === undefined ? 60 : int(d, n, 'seconds', 0, 0x7fffffff) });
    },
  },
  'status-version': {
    min: 1,
    max: 1,
    set(ctx, d, [v]) {
      ctx.o.statusVersion = int(d, v as string, 'status version', 1, 3) as 1 | 2 | 3;
    },
  },
  log: {
    min: 1,
    max: 1,
    set(ctx, d, [f]) {
      ctx.o.log = ctx.pathRef(d, f as string, { append: false });
    },
  },
  'log-append': {
    min: 1,
    max: 1,
    set(ctx, d, [f]) {
      ctx.o.log = ctx.pathRef(d, f as string, { append: true });
    },
  },
  management: {
    min: 2,
    max: 3,
    set(ctx, d, [addr, p, pw]) {
      const unix = p === 'unix';
      if (!unix) port(d, p as string);
      ctx.o.management = { address: addr as string, port: p as string, unix, ...(pw !== undefined ? { passwordFile: pw } : {}) };
    },
  },
  'script-security': integer('scriptSecurity', 'level', 0, 3),
  up: {
    min: 1,
    max: 1,
    set(ctx, _d, [s]) {
      ctx.o.up = s as string;
    },
  },
  'tmp-dir': {
    min: 1,
    max: 1,
    set(ctx, _d, [dir]) {
      ctx.o.tmpDir = dir as string;
    },
  },
  down: {
    min: 1,
    max: 1,
    set(ctx, _d, [s]) {
      ctx.o.down = s as string;
    },
  },
  'down-pre': flag('downPre'),
  'route-up': {
    min: 1,
    max: 1,
    set(ctx, _d, [s]) {
      ctx.o.routeUp = s as string;
    },
  },
  'route-pre-down': {
    min: 1,
    max: 1,
    set(ctx, _d, [s]) {
      ctx.o.routePreDown = s as string;
    },
  },
  setenv: {
    min: 1,
    max: 2,
    set(ctx, d, [name, value]) {
      if (name === 'GENERIC_CONFIG') fail(d, 'this is a generic configuration and cannot directly be used');
      ctx.o.setenv[name as string] = value ?? '';
    },
  },
  // OpenVPN's setenv-safe: the name gets OPENVPN_ in front, so a config cannot set PATH and the like.
  'setenv-safe': {
    min: 1,
    max: 2,
    set(ctx, _d, [name, value]) {
      ctx.o.setenv[`OPENVPN_${name as string}`] = value ?? '';
    },
  },
  'remap-usr1': {
    min: 1,
    max: 1,
    set(ctx, d, [s]) {
      ctx.o.remapUsr1 = oneOf(d, s as string, 'signal', ['SIGHUP', 'SIGTERM'] as const);
    },
  },
  'ignore-unknown-option': {
    min: 1,
    max: 15,
    set(ctx, _d, names) {
      for (const n of names) ctx.o.ignoreUnknownOptions.push(n.startsWith('--') ? n.slice(2) : n);
    },
  },

  // compression: recorded; 2.6 refuses to compress unless told otherwise
  'allow-compression': {
    min: 1,
    max: 1,
    set(ctx, d, [m]) {
      const mode = oneOf(d, m as string, 'mode', ['no', 'asym', 'yes'] as const);
      const c = ctx.o.compression;
      if (mode !== 'no' && c.allowExplicit && c.allow === 'no') fail(d, `cannot set allow-compression to '${mode}' after 'no'`);
      c.allow = mode;
      c.allowExplicit = true;
    },
  },
  'comp-lzo': {
    min: 0,
    max: 1,
    set(ctx, d, [m]) {
      const mode = m === undefined ? 'adaptive' : oneOf(d, m, 'comp-lzo mode', ['yes', 'no', 'adaptive'] as const);
      ctx.o.compression.framing = mode === 'no' ? 'comp-lzo-no' : 'lzo';
      ctx.o.compression.adaptive = mode === 'adaptive';
      ctx.o.compression.where = { file: d.file, line: d.line };
    },
  },
  'comp-noadapt': {
    min: 0,
    max: 0,
    set(ctx) {
      ctx.o.compression.adaptive = false;
    },
  },
  compress: {
    min: 0,
    max: 1,
    set(ctx, d, [a]) {
      const alg: CompressFraming =
        a === undefined ? 'stub' : oneOf(d, a, 'compression algorithm', ['stub', 'stub-v2', 'migrate', 'lzo', 'lz4', 'lz4-v2'] as const);
      ctx.o.compression.framing = alg;
      ctx.o.compression.adaptive = false;
      ctx.o.compression.where = { file: d.file, line: d.line };
    },
  },

  // accepted for compatibility, no effect here
  'fast-io': ignored('shardvpn always uses non-blocking batched I/O'),
  nice: ignored('set the process priority from the service manager'),
  mlock: ignored('not implemented'),
  syslog: ignored('shardvpn logs to stderr; let the service manager send it to syslog'),
  'route-delay': ignored('routes are added once the device is up'),
  'hash-size': ignored('shardvpn sizes its client tables itself'),
  // What these change in OpenVPN is already how shardvpn works, or only its last detail is missing.
  'up-delay': ignored('a client opens its TUN device once the server has answered its pull, which is what up-delay asks for'),
  'persist-local-ip': ignored('a restart binds `local` as written again (an address stays the same address)'),
  'allow-pull-fqdn': ignored('pulled routes must name addresses; a pushed route with a host name is refused as before'),
  passtos: ignored("the tunnel packet's TOS byte is not copied to the encrypted datagram"),
  // Ignored by OpenVPN 2.6 too (a route list has no fixed size since 2.4).
  'max-routes': ignored('deprecated in OpenVPN; route lists have no fixed size'),
  'bcast-buffers': ignored('shardvpn sizes its packet buffers itself'),
  // Written by VPN providers' profiles (tun-mtu-extra 32; disable-occ).
  'tun-mtu-extra': ignored('shardvpn sizes its packet buffers itself'),
  'disable-occ': ignored("shardvpn does not check the peer's options string"),
  // Hardening guides' servers; 2.6 deprecates it (removed in 2.7).
  'opt-verify': ignored("shardvpn does not compare the peer's options string with its own; OpenVPN 2.6 deprecates the option"),
  'ifconfig-nowarn': ignored("shardvpn does not compare its ifconfig with the peer's"),
  'allow-recursive-routing': ignored('shardvpn has no recursive-routing check to turn off'),
  'tcp-queue-limit': ignored("a TCP connection's send queue is bounded at 1 MiB instead; packets beyond that are dropped and counted"),
  'stale-routes-check': ignored("a client's routes go when the client goes; none are learned from traffic"),
  'max-routes-per-client': ignored('no routes are learned from traffic: a client has its pool address and its iroutes only'),
  'mtu-disc': ignored("the kernel's path MTU discovery default applies"),
  'push-peer-info': ignored('the client sends the IV_ variables it always sends'),
  'persist-remote-ip': ignored('a restart resolves the remote again'),
  'remote-random-hostname': ignored('not implemented; the name is resolved as written'),
  'connect-freq': ignored('new sessions are admitted through the stateless cookie exchange; cap them with max-clients'),
  'connect-freq-initial': ignored(
    'first resets get a stateless reply that holds no state; a shard falling behind answers only a share of them',
  ),
  'tls-verify': refused(
    'tls-verify scripts are not supported by shardvpn; use verify-x509-name, remote-cert-tls, crl-verify or auth-user-pass-verify',
  ),
  'management-hold': refused('management-hold is not supported by shardvpn'),
  // Most often openvpn-plugin-auth-pam (logins against the system's users).
  plugin: refused(
    'shardvpn cannot load OpenVPN plugins; for username/password checks (openvpn-plugin-auth-pam) use auth-user-pass-verify with a script',
  ),
  multihome: refused('multihome is not supported by shardvpn; bind to one address with local'),
  'port-share': refused(
    'port-share (handing non-OpenVPN TCP connections to another server) is not supported by shardvpn; give the web server its own port or address',
  ),
  'replay-persist': refused('replay-persist is not supported by shardvpn'),
  'tls-exit': refused('tls-exit is not supported by shardvpn'),
  // Deprecated in OpenVPN and still honoured by 2.6; old client profiles carry `ns-cert-type server`.
  'ns-cert-type': {
    min: 1,
    max: 1,
    set(ctx, d, [t]) {
      ctx.o.nsCertType = oneOf(d, t as string, 'certificate type', ['server', 'client'] as const);
      ctx.warn(d, `ns-cert-type is deprecated; 'remote-cert-tls ${t as string}' checks the same certificates more strictly`);
    },
  },
  'suppress-timestamps': ignored('not implemented'),
  'machine-readable-output': ignored('not implemented'),
  'ifconfig-noexec': flag('ifconfigNoexec'),
  'route-noexec': flag('routeNoexec'),
  'disable-dco': {
    min: 0,
    max: 0,
    set() {
      /* shardvpn has no DCO */
    },
  },

  // shardvpn's own
  workers: integer('workers', 'worker count', 1, 1024),
  'metrics-listen': {
    min: 2,
    max: 2,
    set(ctx, d, [addr, p]) {
      if (net.isIP(addr as string) === 0) fail(d, `bad address '${addr as string}': expected an IPv4 or IPv6 address`);
      ctx.o.metricsListen = { address: addr as string, port: port(d, p as string) };
    },
  },
  'metrics-per-client': flag('metricsPerClient'),
  // SIGHUP on a server: 'hitless' applies the new config to the running server and keeps its
  // clients; 'restart' is OpenVPN's way (every client reconnects).
  'reload-mode': {
    min: 1,
    max: 1,
    set(ctx, d, [m]) {
      ctx.o.reloadMode = oneOf(d, m as string, 'reload-mode', ['hitless', 'restart'] as const);
    },
  },
  // A hitless reload's clients whose client-config-dir file, push list or certificate status
  // changed: told to reconnect (RESTART) or dropped without a word.
  'reload-changed-clients': {
    min: 1,
    max: 1,
    set(ctx, d, [m]) {
      ctx.o.reloadChangedClients = oneOf(d, m as string, 'reload-changed-clients', ['restart', 'drop'] as const);
    },
  },
  // UDP segmentation offload (GSO) on send and receive coalescing (GRO) on the UDP link, where
  // the kernel has them: 'no' keeps one datagram per system call message, as OpenVPN does.
  'udp-offload': {
    min: 1,
    max: 1,
    set(ctx, d, [m]) {
      ctx.o.udpOffload = oneOf(d, m as string, 'udp-offload', ['yes', 'no'] as const) === 'yes';
    },
  },
  // Receive coalescing on the UDP link, like a NIC's rx-usecs: while datagrams arrive less than N
  // microseconds apart (a stock client sends one per system call), a shard or client waits N
  // before reading, so that one wake-up takes several. Idle traffic is read at once. 0: off.
  'udp-coalesce-usecs': integer('udpCoalesceUsecs', 'udp-coalesce-usecs', 0, MAX_UDP_COALESCE_USECS),
  // How often (seconds) the server asks every thread's V8 heap for a memory-reducing collection
  // (server-timers.ts). Each one is a full, incremental mark-compact: on a heap of gigabytes it
  // costs a pause of up to about 100 ms, so a very large server may want it rarer. 0: never.
  'heap-shrink-interval': integer('heapShrinkSeconds', 'heap-shrink-interval', 0, MAX_HEAP_SHRINK_SECONDS),
  // TUN offloads (IFF_VNET_HDR): the kernel hands over TCP/UDP superpackets of up to 64 KiB, split
  // here into packets, and runs of decrypted TCP segments of one flow go to it as one write.
  // 'no' keeps one system call per packet on the TUN side, as OpenVPN does.
  'tun-offload': {
    min: 1,
    max: 1,
    set(ctx, d, [m]) {
      ctx.o.tunOffload = oneOf(d, m as string, 'tun-offload', ['yes', 'no'] as const) === 'yes';
    },
  },
  // The server's TUN device: 'single' is one queue that the main thread reads and routes to the
  // shards; 'shard' opens it with IFF_MULTI_QUEUE, a queue per shard that the shard reads and
  // writes itself (the kernel's flow steering returns a flow's replies to the queue that wrote it).
  'tun-queues': {
    min: 1,
    max: 1,
    set(ctx, d, [m]) {
      ctx.o.tunQueues = oneOf(d, m as string, 'tun-queues', ['single', 'shard'] as const);
    },
  },
};

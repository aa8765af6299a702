// What OpenVPN does after reading all options (helper.c and options_postprocess_mutate):
// expand `server`, `server-ipv6`, `client` and `keepalive`, settle compression, TLS version
// and the connection list.

import { dnsOptionsProblem } from '../protocol/dns-options';
import { POOL_MAX_ADDRESSES, POOL_MIN_NETBITS } from './pool-limit';
import { ConfigError } from './errors';
import { ConnectionEntry, ConnectionFields, Options, Where } from './options-types';
import { addToIPv6 } from '../ip-address';
import { intToIpv4, ipv4ToInt, netmaskBits } from './registry';

export interface PostContext {
  /** The last directive of each name, for error positions. */
  readonly seen: ReadonlyMap<string, Where>;
  /** <connection> blocks, each a snapshot of the global fields overlaid with the block. */
  readonly blocks: readonly ConnectionEntry[];
  warn(at: Where, message: string): void;
  /** The top-level file: where a directive never given is reported. */
  readonly source: string;
}

function at(ctx: PostContext, name: string): Where {
  return ctx.seen.get(name) ?? { file: ctx.source, line: 0 };
}

function err(where: Where, directive: string, detail: string): never {
  throw new ConfigError(where, directive, detail);
}

/** tun, tap or null, from dev-type or the device name's prefix (OpenVPN's dev_type_enum). */
export function deviceType(o: Options): 'tun' | 'tap' | 'null' | undefined {
  if (o.devType !== undefined) return o.devType;
  const dev = o.dev ?? '';
  if (dev.startsWith('tun')) return 'tun';
  if (dev.startsWith('tap')) return 'tap';
  if (dev === 'null') return 'null';
  return undefined;
}

/** Add `n` to an IPv6 address (server-ipv6 arithmetic). */
function addIpv6(address: string, n: number): string {
  return addToIPv6(address, n) ?? address;
}

function expandServerIpv6(o: Options, ctx: PostContext): void {
  const s = o.serverIpv6;
  if (s === undefined) return;
  if (o.client) err(s, 'server-ipv6', 'cannot be used together with client');
  if (o.server?.nopool === true) err(s, 'server-ipv6', "is incompatible with server's 'nopool' flag");
  if (o.ifconfigIpv6Pool !== undefined) {
    err(at(ctx, 'ifconfig-ipv6-pool'), 'ifconfig-ipv6-pool', 'server-ipv6 already defines the IPv6 pool; remove ifconfig-ipv6-pool');
  }
  o.mode = 'server';
  o.tlsServer = true;
  o.ifconfigIpv6 = { local: addIpv6(s.network, 1), netbits: s.netbits, remote: addIpv6(s.network, 2) };
  // Large pools start at base+0x1000 as OpenVPN always did; small ones cannot reach that far.
  o.ifconfigIpv6Pool = { base: addIpv6(s.network, s.netbits < 112 ? 0x1000 : 2), netbits: s.netbits };
  o.push.push('tun-ipv6');
}

function checkPool(where: Where, start: number, end: number): void {
  if (start > end || end - start + 1 > POOL_MAX_ADDRESSES) {
    err(where, 'server', `the address pool ${intToIpv4(start)}-${intToIpv4(end)} is empty or larger than ${POOL_MAX_ADDRESSES} addresses`);
  }
}

function expandServer(o: Options, ctx: PostContext): void {
  const s = o.server;
  if (s === undefined) return;
  if (o.client) err(s, 'server', 'cannot be used together with client');
  if (!s.nopool && o.ifconfigPool !== undefined) {
    err(
      at(ctx, 'ifconfig-pool'),
      'ifconfig-pool',
      "server already defines the address pool; remove ifconfig-pool or add 'nopool' to server",
    );
  }
  const dev = deviceType(o);
  if (dev !== 'tun' && dev !== 'tap') err(s, 'server', 'only makes sense with dev tun or dev tap');
  const network = ipv4ToInt(s.network);
  const netmask = ipv4ToInt(s.netmask);
  const netbits = netmaskBits(netmask);
  if (netbits < 0 || (network & ~netmask) >>> 0 !== 0) err(s, 'server', `network/netmask ${s.network} ${s.netmask} is invalid`);
  if (netbits < POOL_MIN_NETBITS)
    err(
      s,
      'server',
      `netmask allows for too many host addresses (subnet must be ${intToIpv4((~0 << (32 - POOL_MIN_NETBITS)) >>> 0)} (/${POOL_MIN_NETBITS}) or higher)`,
    );
  const broadcast = (network | ~netmask) >>> 0;
  const topology = o.topology;

  o.mode = 'server';
  o.tlsServer = true;
  if (dev === 'tun') {
    if (netbits > 29) err(s, 'server', 'with dev tun the subnet must be 255.255.255.248 (/29) or larger');
    const poolEndReserve = netbits === 29 ? 0 : 4;
    if (topology === 'net30' || topology === 'p2p') {
      o.ifconfig = { local: intToIpv4(network + 1), remoteNetmask: intToIpv4(network + 2) };
      if (!s.nopool) {
        checkPool(s, network + 4, broadcast - poolEndReserve);
        o.ifconfigPool = { start: intToIpv4(network + 4), end: intToIpv4(broadcast - poolEndReserve) };
      }
      o.routes.push({ network: s.network, netmask: s.netmask });
      if (o.clientToClient) o.push.push(`route ${s.network} ${s.netmask}`);
      else if (topology === 'net30') o.push.push(`route ${intToIpv4(network + 1)}`);
    } else {
      o.ifconfig = { local: intToIpv4(network + 1), remoteNetmask: s.netmask };
      if (!s.nopool) {
        checkPool(s, network + 2, broadcast - 1);
        o.ifconfigPool = { start: intToIpv4(network + 2), end: intToIpv4(broadcast - 1), netmask: s.netmask };
      } else if (o.ifconfigPool !== undefined) {
        o.ifconfigPool = { ...o.ifconfigPool, netmask: s.netmask };
      }
      o.push.push(`route-gateway ${intToIpv4(network + 1)}`);
      if (o.routeGateway === undefined) o.routeGateway = intToIpv4(network + 2);
    }
    o.push.push(`topology ${topology}`);
    if (topology === 'net30' && !s.nopool) {
      ctx.warn(s, 'topology net30 with an IPv4 pool is deprecated and will be removed from OpenVPN; use topology subnet');
    }
  } else {
    if (netbits > 30) err(s, 'server', 'with dev tap the subnet must be 255.255.255.252 (/30) or larger');
    o.ifconfig = { local: intToIpv4(network + 1), remoteNetmask: s.netmask };
    if (!s.nopool) {
      checkPool(s, network + 2, broadcast - 1);
      o.ifconfigPool = { start: intToIpv4(network + 2), end: intToIpv4(broadcast - 1), netmask: s.netmask };
    }
    o.push.push(`route-gateway ${intToIpv4(network + 1)}`);
  }
  if (dev === 'tap' || topology === 'subnet') {
    o.pushIfconfigConstraint = { network: s.network, netmask: s.netmask };
  }
}

function expandKeepalive(o: Options, ctx: PostContext): void {
  const k = o.keepalive;
  if (k === undefined) return;
  if (o.ping !== 0 || o.pingRecTimeout !== 0) {
    err(at(ctx, 'keepalive'), 'keepalive', 'conflicts with ping, ping-exit and ping-restart: keepalive sets them');
  }
  o.ping = k.interval;
  o.pingRecAction = 'restart';
  if (o.mode === 'server') {
    // The server waits twice as long, so the client notices a dead link first.
    o.pingRecTimeout = k.timeout * 2;
    o.push.push(`ping ${k.interval}`, `ping-restart ${k.timeout}`);
  } else {
    o.pingRecTimeout = k.timeout;
  }
}

function settleCompression(o: Options, ctx: PostContext): void {
  const c = o.compression;
  const compresses = c.framing === 'lzo' || c.framing === 'lz4' || c.framing === 'lz4-v2' || c.framing === 'migrate';
  if (c.allowExplicit) {
    if (c.allow === 'no' && compresses) {
      err(c.where ?? at(ctx, 'compress'), 'compress', "compression is enabled but 'allow-compression no' forbids it");
    }
    return;
  }
  // 2.6: with no compression directive nothing but stubs is allowed; with one, only receiving.
  c.allow = compresses ? 'asym' : 'no';
  if (compresses && c.where !== undefined) {
    ctx.warn(
      c.where,
      'compression is enabled for receiving only (as OpenVPN 2.6 does without allow-compression); ' +
        'compression has been used to break encryption, remove it from both ends',
    );
  }
}

function settleTlsVersion(o: Options, ctx: PostContext): void {
  // Without tls-version-min, 2.6 uses 1.2, or the maximum when that is lower.
  if (!ctx.seen.has('tls-version-min') && o.tlsVersionMax !== undefined && o.tlsVersionMax < '1.2') {
    o.tlsVersionMin = o.tlsVersionMax;
  }
  if (o.tlsVersionMax !== undefined && o.tlsVersionMin > o.tlsVersionMax) {
    // or-highest asks for the highest version there is, and tls-version-max says which that is.
    if (o.tlsVersionMinOrHighest) o.tlsVersionMin = o.tlsVersionMax;
    else err(at(ctx, 'tls-version-min'), 'tls-version-min', `${o.tlsVersionMin} is above tls-version-max ${o.tlsVersionMax}`);
  }
  if (o.tlsVersionMax !== undefined && o.tlsVersionMax < '1.2') {
    // OpenSSL 3 refuses TLS 1.0 and 1.1 at its default security level, so OpenVPN 2.6 built on it
    // fails every handshake with such a maximum; 1.2 is the lowest version shardvpn speaks.
    ctx.warn(at(ctx, 'tls-version-max'), `tls-version-max ${o.tlsVersionMax} is raised to 1.2, the lowest TLS version shardvpn speaks`);
  }
}

function settleCipher(o: Options, ctx: PostContext): void {
  if (
    o.cipher !== undefined &&
    o.dataCiphersFallback === undefined &&
    (o.pull || o.mode === 'server') &&
    !o.dataCiphers.some((c) => c.toUpperCase() === o.cipher?.toUpperCase())
  ) {
    ctx.warn(
      at(ctx, 'cipher'),
      `cipher '${o.cipher}' is not in data-ciphers (${o.dataCiphers.join(':')}), so it is ignored ` +
        'for negotiation; add it to data-ciphers or use data-ciphers-fallback',
    );
  }
}

function connectionFields(o: ConnectionFields): ConnectionFields {
  return {
    proto: { ...o.proto },
    ...(o.local !== undefined ? { local: o.local } : {}),
    localPort: o.localPort,
    localPortDefined: o.localPortDefined,
    remotePort: o.remotePort,
    bind: o.bind,
    bindDefined: o.bindDefined,
    bindIpv6Only: o.bindIpv6Only,
    connectRetry: o.connectRetry,
    connectRetryMaxWait: o.connectRetryMaxWait,
    connectTimeout: o.connectTimeout,
    explicitExitNotify: o.explicitExitNotify,
    tunMtu: o.tunMtu,
    tunMtuDefined: o.tunMtuDefined,
    mssfix: { ...o.mssfix },
    float: o.float,
    ...(o.httpProxy !== undefined ? { httpProxy: o.httpProxy } : {}),
    ...(o.httpProxyOptions !== undefined ? { httpProxyOptions: o.httpProxyOptions } : {}),
  };
}

/** A <connection> entry starts as a copy of the global fields at the point it is read. */
export function snapshotConnection(o: Options, where: Where): ConnectionEntry {
  return { ...connectionFields(o), file: where.file, line: where.line };
}

function settleEntry(o: Options, e: ConnectionEntry): void {
  if (e.proto.transport === 'tcp') {
    if (o.server !== undefined) e.proto.transport = 'tcp-server';
    else if (o.client) e.proto.transport = 'tcp-client';
  }
  const needBind = e.local !== undefined || e.localPortDefined || e.bindDefined;
  if (!needBind && (e.proto.transport === 'tcp-client' || o.pull)) e.bind = false;
  // Global keys fill entries whose block named none (options_postprocess does the same).
  if (e.tlsAuth === undefined && o.tlsAuth !== undefined) {
    e.tlsAuth = o.tlsAuth;
    if (o.keyDirection !== undefined) e.keyDirection = o.keyDirection;
    else delete e.keyDirection;
  }
  if (e.tlsCrypt === undefined && o.tlsCrypt !== undefined) e.tlsCrypt = o.tlsCrypt;
  if (e.tlsCryptV2 === undefined && o.tlsCryptV2 !== undefined) e.tlsCryptV2 = o.tlsCryptV2;
}

function settleConnections(o: Options, ctx: PostContext): void {
  let entries: ConnectionEntry[];
  if (ctx.blocks.length > 0) {
    const first = o.remotes[0];
    if (first !== undefined) ctx.warn(first, 'remote outside <connection> is ignored because <connection> blocks are present');
    entries = ctx.blocks.map((b) => ({ ...b, proto: { ...b.proto }, mssfix: { ...b.mssfix } }));
  } else if (o.remotes.length > 0) {
    entries = o.remotes.map((r) => ({
      ...connectionFields(o),
      remote: r.host,
      remotePort: r.port ?? o.remotePort,
      proto: r.proto !== undefined ? { ...r.proto } : { ...o.proto },
      file: r.file,
      line: r.line,
    }));
  } else {
    entries = [{ ...connectionFields(o), ...at(ctx, 'proto') }];
  }
  for (const e of entries) settleEntry(o, e);
  if (o.proto.transport === 'tcp') {
    if (o.server !== undefined) o.proto.transport = 'tcp-server';
    else if (o.client) o.proto.transport = 'tcp-client';
  }
  o.connections = entries;
}

/** Run OpenVPN's post-processing on `o` in place. */
export function postprocess(o: Options, ctx: PostContext): void {
  expandServerIpv6(o, ctx);
  expandServer(o, ctx);
  if (o.server === undefined && o.client) {
    o.pull = true;
    o.tlsClient = true;
  }
  expandKeepalive(o, ctx);
  if (o.tcpNodelay && o.mode === 'server' && ctx.seen.has('tcp-nodelay')) o.push.push('socket-flags TCP_NODELAY');
  settleCipher(o, ctx);
  settleTlsVersion(o, ctx);
  settleCompression(o, ctx);
  settleConnections(o, ctx);
  // OPT_P_INSTANCE: only a client instance's own file or script output may remove pushes.
  if (o.pushRemove.length > 0 && (o.mode === 'server' || o.client))
    err(at(ctx, 'push-remove'), 'push-remove', 'push-remove is for a client-config-dir file or client-connect output, not this config');
  // dns.c dns_options_verify: every --dns server needs an address.
  const dnsProblem = o.dns === undefined ? null : dnsOptionsProblem(o.dns);
  if (dnsProblem !== null) err(at(ctx, 'dns'), 'dns', dnsProblem);
  // options.c: a server that lets clients in without a certificate must check them some other way.
  if (o.mode === 'server' && o.verifyClientCert !== 'require' && o.authUserPassVerify === undefined && !o.managementClientAuth)
    err(
      at(ctx, 'verify-client-cert'),
      'verify-client-cert',
      `verify-client-cert ${o.verifyClientCert} must be used with an auth-user-pass-verify script or management-client-auth`,
    );
  // options.c: the renewal time defaults to reneg-sec; both must be finite, and a renewal shorter
  // than two hand-windows would expire tokens while a renegotiation is still under way.
  if (o.authGenToken !== undefined && o.authGenToken.renewalS === 0) o.authGenToken.renewalS = o.renegSec;
  if (o.mode === 'server' && o.authGenToken !== undefined && o.renegSec === 0)
    err(at(ctx, 'auth-gen-token'), 'auth-gen-token', '--auth-gen-token needs a non-infinite --reneg-sec setting');
  if (o.mode === 'server' && o.authGenToken !== undefined && o.authGenToken.renewalS < 2 * o.handWindow)
    err(
      at(ctx, 'auth-gen-token'),
      'auth-gen-token',
      `--auth-gen-token renewal time needs to be at least two times --hand-window (${o.handWindow})`,
    );
  if (o.mode === 'server' && o.authUserPassOptional && o.authUserPassVerify === undefined && !o.managementClientAuth)
    err(
      at(ctx, 'auth-user-pass-optional'),
      'auth-user-pass-optional',
      'auth-user-pass-optional must be used with an auth-user-pass-verify script or management-client-auth',
    );
}

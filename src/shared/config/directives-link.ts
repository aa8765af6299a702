// Directives of the link: transport, addresses and ports, peers, timers, MTU.

import type { HttpProxy } from './options-types';
import { DirectiveTable, fail, flag, int, integer, oneOf, port, proto } from './registry';

const MAX_SECONDS = 0x7fffffff;

export const linkDirectives: DirectiveTable = {
  proto: {
    min: 1,
    max: 1,
    connection: true,
    set(ctx, d, [p]) {
      ctx.ce.proto = proto(d, p as string);
    },
  },
  local: {
    min: 1,
    max: 1,
    connection: true,
    set(ctx, _d, [h]) {
      ctx.ce.local = h as string;
    },
  },
  port: {
    min: 1,
    max: 1,
    connection: true,
    set(ctx, d, [p]) {
      ctx.ce.localPort = ctx.ce.remotePort = port(d, p as string);
    },
  },
  lport: {
    min: 1,
    max: 1,
    connection: true,
    set(ctx, d, [p]) {
      ctx.ce.localPort = port(d, p as string);
      ctx.ce.localPortDefined = true;
    },
  },
  rport: {
    min: 1,
    max: 1,
    connection: true,
    set(ctx, d, [p]) {
      ctx.ce.remotePort = port(d, p as string);
    },
  },
  remote: {
    min: 1,
    max: 3,
    connection: true,
    set(ctx, d, [host, p, pr]) {
      const entry = {
        host: host as string,
        ...(p !== undefined ? { port: port(d, p) } : {}),
        ...(pr !== undefined ? { proto: proto(d, pr) } : {}),
        file: d.file,
        line: d.line,
      };
      if (ctx.inConnection) {
        // Inside <connection> the remote's port and proto become the entry's (connection_entry_load_re).
        ctx.ce.remote = entry.host;
        if (entry.port !== undefined) ctx.ce.remotePort = entry.port;
        if (entry.proto !== undefined) ctx.ce.proto = entry.proto;
      } else {
        ctx.o.remotes.push(entry);
      }
    },
  },
  'remote-random': flag('remoteRandom'),
  nobind: {
    min: 0,
    max: 0,
    connection: true,
    set(ctx) {
      ctx.ce.bind = false;
    },
  },
  bind: {
    min: 0,
    max: 1,
    connection: true,
    set(ctx, d, [flag]) {
      if (flag !== undefined) oneOf(d, flag, 'bind flag', ['ipv6only']);
      ctx.ce.bind = true;
      ctx.ce.bindIpv6Only = flag === 'ipv6only';
      ctx.ce.bindDefined = true;
    },
  },
  float: {
    min: 0,
    max: 0,
    connection: true,
    set(ctx) {
      ctx.ce.float = true;
    },
  },
  'resolv-retry': {
    min: 1,
    max: 1,
    set(ctx, d, [s]) {
      ctx.o.resolvRetry = s === 'infinite' ? Infinity : int(d, s as string, 'seconds', 0, MAX_SECONDS);
    },
  },
  'connect-retry': {
    min: 1,
    max: 2,
    connection: true,
    set(ctx, d, [n, max]) {
      // OpenVPN caps the base at 16 bits so the exponential backoff cannot overflow.
      ctx.ce.connectRetry = Math.min(int(d, n as string, 'seconds', 0, MAX_SECONDS), 0xffff);
      if (max !== undefined) ctx.ce.connectRetryMaxWait = Math.max(int(d, max, 'seconds', 0, MAX_SECONDS), ctx.ce.connectRetry);
    },
  },
  'connect-retry-max': integer('connectRetryMax', 'count', 0, MAX_SECONDS),
  'connect-timeout': {
    min: 1,
    max: 1,
    connection: true,
    set(ctx, d, [n]) {
      ctx.ce.connectTimeout = int(d, n as string, 'seconds', 0, MAX_SECONDS);
    },
  },
  // OPT_P_GENERAL|OPT_P_CONNECTION. Basic authentication from a file (or none); the automatic,
  // Digest and NTLM methods are read and refused at start.
  'http-proxy': {
    min: 2,
    max: 4,
    connection: true,
    set(ctx, d, [host, portText, auth, method]) {
      const proxy: HttpProxy = { host: host as string, port: port(d, portText as string) };
      if (auth === 'auto' || auth === 'auto-nct') {
        ctx.unsupported(
          d,
          `http-proxy ${auth} (finding the proxy's authentication method) is not supported by shardvpn; name a file of username and password (basic)`,
        );
      } else if (auth !== undefined) {
        const authMethod = oneOf(d, method ?? 'basic', 'auth-method', ['none', 'basic', 'digest', 'ntlm', 'ntlm2']);
        if (authMethod === 'digest' || authMethod === 'ntlm' || authMethod === 'ntlm2') {
          ctx.unsupported(d, `http-proxy ${authMethod} authentication is not supported by shardvpn; use basic (or none)`);
        }
        if (authMethod !== 'none') proxy.auth = auth === 'stdin' ? { kind: 'stdin' } : ctx.pathRef(d, auth, { kind: 'file' as const });
      }
      ctx.ce.httpProxy = proxy;
    },
  },
  'http-proxy-option': {
    min: 1,
    max: 3,
    connection: true,
    set(ctx, d, [kind, a, b]) {
      const options = (ctx.ce.httpProxyOptions ??= { headers: [] });
      if (kind === 'VERSION' && a !== undefined && b === undefined) options.version = a;
      else if (kind === 'AGENT' && a !== undefined && b === undefined) options.agent = a;
      // EXT1 and EXT2 are CUSTOM-HEADER's older names (options.c).
      else if ((kind === 'CUSTOM-HEADER' || kind === 'EXT1' || kind === 'EXT2') && a !== undefined)
        options.headers.push({ name: a, ...(b !== undefined ? { content: b } : {}) });
      else fail(d, `Bad http-proxy-option or missing or extra parameter: '${[kind, a, b].filter((x) => x !== undefined).join(' ')}'`);
    },
  },
  'server-poll-timeout': {
    min: 1,
    max: 1,
    connection: true,
    set(ctx, d, [n]) {
      ctx.ce.connectTimeout = int(d, n as string, 'seconds', 0, MAX_SECONDS);
    },
  },
  'explicit-exit-notify': {
    min: 0,
    max: 1,
    connection: true,
    set(ctx, d, [n]) {
      ctx.ce.explicitExitNotify = n === undefined ? 1 : int(d, n, 'count', 0, MAX_SECONDS);
    },
  },

  // timers
  keepalive: {
    min: 2,
    max: 2,
    set(ctx, d, [a, b]) {
      const interval = int(d, a as string, 'ping interval', 1, MAX_SECONDS);
      const timeout = int(d, b as string, 'restart timeout', 1, MAX_SECONDS);
      if (interval * 2 > timeout) {
        fail(
          d,
          `the restart timeout (${timeout}) must be at least twice the ping interval (${interval}); ` +
            'the usual setting is keepalive 10 60',
        );
      }
      ctx.o.keepalive = { interval, timeout };
    },
  },
  ping: integer('ping', 'seconds', 0, MAX_SECONDS),
  'ping-restart': {
    min: 1,
    max: 1,
    set(ctx, d, [n]) {
      ctx.o.pingRecTimeout = int(d, n as string, 'seconds', 0, MAX_SECONDS);
      ctx.o.pingRecAction = 'restart';
    },
  },
  'ping-exit': {
    min: 1,
    max: 1,
    set(ctx, d, [n]) {
      ctx.o.pingRecTimeout = int(d, n as string, 'seconds', 0, MAX_SECONDS);
      ctx.o.pingRecAction = 'exit';
    },
  },
  'ping-timer-rem': flag('pingTimerRem'),
  // OPT_P_ROUTE: also pushed (push "block-ipv6"), where a client takes it.
  'block-ipv6': {
    min: 0,
    max: 0,
    set(ctx) {
      ctx.o.blockIpv6 = true;
    },
  },
  // OPT_P_TIMER: also in a CCD file, a client-connect script's output, and pushed.
  'session-timeout': integer('sessionTimeout', 'seconds', 0, MAX_SECONDS),
  inactive: {
    min: 1,
    max: 2,
    set(ctx, d, [s, b]) {
      ctx.o.inactive = {
        seconds: int(d, s as string, 'seconds', 0, MAX_SECONDS),
        bytes: b === undefined ? 0 : int(d, b, 'bytes', 0, Number.MAX_SAFE_INTEGER),
      };
    },
  },

  // MTU and socket
  'tun-mtu': {
    min: 1,
    max: 2,
    connection: true,
    set(ctx, d, [n]) {
      ctx.ce.tunMtu = int(d, n as string, 'MTU', 100, 65536);
      ctx.ce.tunMtuDefined = true;
    },
  },
  mssfix: {
    min: 0,
    max: 2,
    connection: true,
    set(ctx, d, [n, flag]) {
      if (n === undefined) {
        ctx.ce.mssfix = { size: 1492, encap: true, fixed: false };
        return;
      }
      const size = int(d, n, 'size', 0, 65535);
      const f = flag === undefined ? undefined : oneOf(d, flag, 'mssfix flag', ['mtu', 'fixed'] as const);
      ctx.ce.mssfix = { size, encap: f === 'mtu', fixed: f === 'fixed' };
    },
  },
  fragment: {
    min: 1,
    max: 2,
    connection: true,
    set(_ctx, d) {
      fail(d, 'not supported by shardvpn (fragmentation breaks with DCO too); remove it from both ends and rely on mssfix');
    },
  },
  // helper_tcp_nodelay: on a server also pushed, as socket-flags TCP_NODELAY.
  'tcp-nodelay': flag('tcpNodelay'),
  'socket-flags': {
    min: 1,
    max: 8,
    set(ctx, d, flags) {
      for (const f of flags) oneOf(d, f, 'socket flag', ['TCP_NODELAY']);
      ctx.o.tcpNodelay = true;
    },
  },
  // Linux socket options of the link socket (OPT_P_GENERAL, OPT_P_SOCKFLAGS).
  mark: integer('mark', 'mark', 0, 0xffffffff),
  'bind-dev': {
    min: 1,
    max: 1,
    set(ctx, d, [dev]) {
      // IFNAMSIZ: 15 characters and the NUL.
      if ((dev as string).length === 0 || (dev as string).length > 15) fail(d, `bad device name '${dev as string}': 1 to 15 characters`);
      ctx.o.bindDev = dev as string;
    },
  },
  sndbuf: integer('sndbuf', 'size', 0, 0x7fffffff),
  rcvbuf: integer('rcvbuf', 'size', 0, 0x7fffffff),
  txqueuelen: integer('txqueuelen', 'length', 0, 0x7fffffff),
};

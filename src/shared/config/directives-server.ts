// Directives of roles, the virtual network, push and routes.

import { isIPv6 } from 'node:net';
import { applyDnsOption, emptyDnsOptions } from '../protocol/dns-options';
import { withoutRemoved } from '../protocol/push-options';
import { POOL_MAX_ADDRESSES } from './pool-limit';
import { DirectiveTable, fail, flag, int, integer, ipv4, ipv4OrHost, ipv4ToInt, ipv6, ipv6Prefix, netmaskBits, oneOf } from './registry';

function poolRange(d: Parameters<typeof fail>[0], start: string, end: string): void {
  const s = ipv4ToInt(start);
  const e = ipv4ToInt(end);
  if (s > e) fail(d, `pool start ${start} is above pool end ${end}`);
  if (e - s + 1 > POOL_MAX_ADDRESSES) fail(d, `pool ${start}-${end} holds more than ${POOL_MAX_ADDRESSES} addresses`);
}

export const serverDirectives: DirectiveTable = {
  mode: {
    min: 1,
    max: 1,
    set(ctx, d, [m]) {
      ctx.o.mode = oneOf(d, m as string, 'mode', ['p2p', 'server'] as const);
    },
  },
  client: flag('client'),
  pull: flag('pull'),
  server: {
    min: 2,
    max: 3,
    set(ctx, d, [net, mask, flag]) {
      const network = ipv4(d, net as string, 'network');
      const netmask = ipv4(d, mask as string, 'netmask');
      if (ipv4ToInt(network) === 0 || ipv4ToInt(netmask) === 0) fail(d, 'network and netmask must not be 0.0.0.0');
      if (flag !== undefined) oneOf(d, flag, 'flag', ['nopool']);
      ctx.o.server = { network, netmask, nopool: flag === 'nopool', file: d.file, line: d.line };
    },
  },
  'server-ipv6': {
    min: 1,
    max: 1,
    set(ctx, d, [p]) {
      const { address, netbits } = ipv6Prefix(d, p as string, 'network', 64, 124);
      ctx.o.serverIpv6 = { network: address, netbits, file: d.file, line: d.line };
    },
  },
  'server-bridge': {
    min: 0,
    max: 4,
    set(ctx, d) {
      ctx.unsupported(d, 'server-bridge (tap bridging) is not supported by shardvpn; use server with dev tun');
    },
  },
  dev: {
    min: 1,
    max: 1,
    set(ctx, d, [dev]) {
      ctx.o.dev = dev as string;
      if ((dev as string).startsWith('tap')) ctx.unsupported(d, 'tap devices are not supported by shardvpn; use dev tun');
    },
  },
  'dev-type': {
    min: 1,
    max: 1,
    set(ctx, d, [t]) {
      ctx.o.devType = oneOf(d, t as string, 'device type', ['tun', 'tap', 'null'] as const);
      if (t === 'tap') ctx.unsupported(d, 'tap devices are not supported by shardvpn; use dev-type tun');
    },
  },
  topology: {
    min: 1,
    max: 1,
    set(ctx, d, [t]) {
      ctx.o.topology = oneOf(d, t as string, 'topology', ['net30', 'p2p', 'subnet'] as const);
    },
  },
  'tun-ipv6': {
    min: 0,
    max: 0,
    set(ctx, d) {
      ctx.warn(d, 'tun-ipv6 is ignored: modern systems need no special IPv6 tun handling');
    },
  },
  ifconfig: {
    min: 2,
    max: 2,
    set(ctx, d, [l, r]) {
      ctx.o.ifconfig = {
        local: ipv4OrHost(d, l as string, 'local address'),
        remoteNetmask: ipv4OrHost(d, r as string, 'remote address or netmask'),
      };
    },
  },
  'ifconfig-ipv6': {
    min: 2,
    max: 2,
    set(ctx, d, [l, r]) {
      const { address, netbits } = ipv6Prefix(d, l as string, 'local address', 64, 124);
      ctx.o.ifconfigIpv6 = { local: address, netbits, remote: ipv6(d, r as string, 'remote address') };
    },
  },
  'ifconfig-pool': {
    min: 2,
    max: 3,
    set(ctx, d, [s, e, m]) {
      const start = ipv4(d, s as string, 'pool start');
      const end = ipv4(d, e as string, 'pool end');
      poolRange(d, start, end);
      ctx.o.ifconfigPool = { start, end, ...(m !== undefined ? { netmask: ipv4(d, m, 'netmask') } : {}) };
    },
  },
  'ifconfig-ipv6-pool': {
    min: 1,
    max: 1,
    set(ctx, d, [p]) {
      const { address, netbits } = ipv6Prefix(d, p as string, 'pool', 64, 124);
      ctx.o.ifconfigIpv6Pool = { base: address, netbits };
    },
  },
  'ifconfig-pool-persist': {
    min: 1,
    max: 2,
    set(ctx, d, [f, n]) {
      ctx.o.ifconfigPoolPersist = ctx.pathRef(d, f as string, {
        refreshSeconds: n === undefined ? 600 : int(d, n, 'seconds', 0, 0x7fffffff),
      });
    },
  },
  'ifconfig-push': {
    min: 2,
    max: 3,
    set(ctx, d, [l, r, a]) {
      ctx.o.ifconfigPush = {
        local: ipv4(d, l as string, 'local address'),
        remoteNetmask: ipv4(d, r as string, 'remote address or netmask'),
        ...(a !== undefined ? { alias: ipv4(d, a, 'alias address') } : {}),
      };
    },
  },
  'ifconfig-ipv6-push': {
    min: 1,
    max: 2,
    set(ctx, d, [l, r]) {
      const { address, netbits } = ipv6Prefix(d, l as string, 'address', 0, 128);
      ctx.o.ifconfigIpv6Push = { local: address, netbits, ...(r !== undefined ? { remote: ipv6(d, r, 'remote address') } : {}) };
    },
  },
  push: {
    min: 1,
    max: 1,
    set(ctx, _d, [text]) {
      ctx.o.push.push(text as string);
    },
  },
  // A client-config-dir file's or client-connect script's (OPT_P_INSTANCE): drops the push options
  // that start with the text from what this client is sent, the ones given so far (push.c
  // push_remove_option); `ifconfig` and `ifconfig-ipv6` stop the client's address being pushed.
  'push-remove': {
    min: 1,
    max: 1,
    set(ctx, _d, [prefix]) {
      ctx.o.push = withoutRemoved(ctx.o.push, [prefix as string]);
      ctx.o.pushRemove.push(prefix as string);
    },
  },
  'push-reset': {
    min: 0,
    max: 0,
    set(ctx) {
      ctx.o.push = [];
    },
  },
  'route-metric': integer('routeMetric', 'metric', 0, 0x7fffffff),
  route: {
    min: 1,
    max: 4,
    set(ctx, d, [net, mask, gw, metric]) {
      ctx.o.routes.push({
        network: net as string,
        ...(mask !== undefined && mask !== 'default' ? { netmask: ipv4(d, mask, 'netmask') } : {}),
        ...(gw !== undefined && gw !== 'default' ? { gateway: gw } : {}),
        ...(metric !== undefined && metric !== 'default' ? { metric: int(d, metric, 'metric', 0, 0x7fffffff) } : {}),
      });
    },
  },
  'route-ipv6': {
    min: 1,
    max: 3,
    set(ctx, d, [net, gw, metric]) {
      ctx.o.routesIpv6.push({
        network: net as string,
        ...(gw !== undefined ? { gateway: gw } : {}),
        ...(metric !== undefined ? { metric: int(d, metric, 'metric', 0, 0x7fffffff) } : {}),
      });
    },
  },
  'route-gateway': {
    min: 1,
    max: 1,
    set(ctx, d, [g]) {
      ctx.o.routeGateway = g === 'dhcp' ? 'dhcp' : ipv4OrHost(d, g as string, 'gateway');
    },
  },
  // The IPv6 routes' gateway when a route names none (default: the ifconfig-ipv6 peer).
  'route-ipv6-gateway': {
    min: 1,
    max: 1,
    set(ctx, d, [g]) {
      if (!isIPv6(g as string)) fail(d, `route-ipv6-gateway parm '${g as string}' must be a valid address`);
      ctx.o.routeIpv6Gateway = g as string;
    },
  },
  'route-nopull': flag('routeNopull'),
  'pull-filter': {
    min: 2,
    max: 2,
    set(ctx, d, [a, text]) {
      ctx.o.pullFilters.push({
        action: oneOf(d, a as string, 'pull-filter action', ['accept', 'ignore', 'reject'] as const),
        text: text as string,
      });
    },
  },
  'redirect-gateway': {
    min: 0,
    max: 15,
    set(ctx, d, args) {
      const known = ['local', 'autolocal', 'def1', 'bypass-dhcp', 'bypass-dns', 'block-local', 'ipv6', '!ipv4'];
      for (const f of args) oneOf(d, f, 'redirect-gateway flag', known);
      if (ctx.o.redirectGateway !== undefined) ctx.warn(d, 'redirect-gateway given more than once: the flags add up');
      const prev = ctx.o.redirectGateway;
      ctx.o.redirectGateway = {
        ipv4: !args.includes('!ipv4'),
        ipv6: (prev?.ipv6 ?? false) || args.includes('ipv6'),
        flags: [...(prev?.flags ?? []), ...args],
      };
    },
  },
  // OpenVPN 2.6's successor of dhcp-option DNS/DOMAIN-SEARCH (OPT_P_DHCPDNS: also pushed).
  dns: {
    min: 1,
    max: 15,
    set(ctx, d, args) {
      ctx.o.dns ??= emptyDnsOptions();
      const problem = applyDnsOption(ctx.o.dns, args, false);
      if (problem !== null) fail(d, problem);
    },
  },
  'dhcp-option': {
    min: 1,
    max: 2,
    set(ctx, _d, [type, value]) {
      ctx.o.dhcpOptions.push({ type: type as string, ...(value !== undefined ? { value } : {}) });
    },
  },
  'client-to-client': flag('clientToClient'),
  'duplicate-cn': flag('duplicateCn'),
  'max-clients': {
    min: 1,
    max: 1,
    // Bounded by the 24-bit peer-id, like OpenVPN's MAX_PEER_ID.
    set(ctx, d, [n]) {
      ctx.o.maxClients = int(d, n as string, 'client count', 0, 0xfffffe);
    },
  },
  'client-config-dir': {
    min: 1,
    max: 1,
    set(ctx, d, [p]) {
      ctx.o.clientConfigDir = ctx.pathRef(d, p as string, {});
    },
  },
  'ccd-exclusive': flag('ccdExclusive'),
  'client-connect': {
    min: 1,
    max: 1,
    set(ctx, _d, [cmd]) {
      ctx.o.clientConnect = cmd as string;
    },
  },
  'client-disconnect': {
    min: 1,
    max: 1,
    set(ctx, _d, [cmd]) {
      ctx.o.clientDisconnect = cmd as string;
    },
  },
  'learn-address': {
    min: 1,
    max: 1,
    set(ctx, _d, [cmd]) {
      ctx.o.learnAddress = cmd as string;
    },
  },
  'management-client-auth': flag('managementClientAuth'),
  iroute: {
    min: 1,
    max: 2,
    set(ctx, d, [net, mask]) {
      const network = ipv4(d, net as string, 'network');
      const netmask = mask === undefined ? '255.255.255.255' : ipv4(d, mask, 'netmask');
      const m = ipv4ToInt(netmask);
      if (netmaskBits(m) < 0 || (ipv4ToInt(network) & ~m) >>> 0 !== 0) {
        fail(d, `bad network/netmask '${network} ${netmask}'`);
      }
      ctx.o.iroutes.push({ network, netmask });
    },
  },
  'iroute-ipv6': {
    min: 1,
    max: 1,
    set(ctx, d, [p]) {
      const r = ipv6Prefix(d, p as string, 'network', 0, 128);
      ctx.o.iroutesIpv6.push(`${r.address}/${r.netbits}`);
    },
  },
};

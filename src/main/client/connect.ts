// The connect step of a client run (socket.c resolve_remote, link_socket_init_phase1/2): the
// server's address, from an earlier run or resolved now under resolv-retry, and the link to it:
// a UDP socket (bound when --bind asks), or a TCP connection for proto tcp-client.
import { connect as tcpConnect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

import type { ConnectionEntry, Options } from '../../shared/config';
import type { Logger } from '../../shared/log';
import type { LinkIO } from '../../shared/io';
import { UdpSocket } from '../../shared/native';
import { StreamLink } from '../../shared/stream-link';
import { printSockaddr, resolveLinkLocal } from '../link-local';
import { socketBuffers, socketRouting } from '../socket-options';
import { connectRequest, establishPassthru, proxyCredentials, type ProxyCredentials } from './http-proxy';
import { resolveRemote, type RemoteAddress } from './remotes';
import type { ClientPersist, RemoteEndpoint, RunControl } from './run-context';

const RESOLVE_RETRY_MS = 5000;

export interface ConnectContext {
  readonly options: Options;
  readonly entry: ConnectionEntry;
  readonly persist: ClientPersist;
  readonly logger: Logger;
  readonly run: RunControl;
  /** Keeps a timer the run clears when it stops. */
  addTimer(timer: NodeJS.Timeout): void;
}

/** The server's address: the one kept from an earlier run, else the entry's name resolved now; null when the run ends instead. */
export async function chooseRemote(ctx: ConnectContext, kept: RemoteAddress | null): Promise<RemoteEndpoint | null> {
  const proxy = ctx.entry.httpProxy;
  if (proxy !== undefined) {
    // The connection goes to the proxy; the server's name goes in its CONNECT, unresolved here.
    const picked = await resolve(ctx, proxy.host, proxy.port, false);
    return picked === null ? null : { family: picked.family, address: picked.address, port: proxy.port };
  }
  const port = ctx.entry.remotePort;
  if (kept !== null) {
    ctx.logger.log(1, `TCP/UDP: Preserving recently used remote address: ${printSockaddr(kept.family, kept.address, port)}`);
    return { family: kept.family, address: kept.address, port };
  }
  const picked = await resolve(ctx, ctx.entry.remote ?? '', port, true);
  return picked === null ? null : { family: picked.family, address: picked.address, port };
}

/**
 * Resolves a name (resolv-retry): the remote's, whose other addresses the list keeps for later
 * runs (`remember`), or the proxy's.
 */
async function resolve(ctx: ConnectContext, host: string, port: number, remember: boolean): Promise<RemoteAddress | null> {
  const { entry, logger, run } = ctx;
  // resolv-retry infinite (the default): one try, a failure restarts with the next remote;
  // resolv-retry N: retry every 5 s for N seconds, then give up (socket.c resolve_remote).
  const retryS = ctx.options.resolvRetry;
  const giveUpAt = performance.now() + (Number.isFinite(retryS) ? retryS * 1000 : 0);
  let resolved = await resolveRemote(host, entry.proto.family);
  while (!resolved.ok && Number.isFinite(retryS) && performance.now() + RESOLVE_RETRY_MS <= giveUpAt && !run.isOver()) {
    logger.log(1, `RESOLVE: Cannot resolve host address: ${host}:${port} (${resolved.reason})`);
    await new Promise((wake) => ctx.addTimer(setTimeout(wake, RESOLVE_RETRY_MS)));
    if (run.isOver()) return null;
    resolved = await resolveRemote(host, entry.proto.family);
  }
  if (run.isOver()) return null;
  if (!resolved.ok) {
    logger.log(1, `RESOLVE: Cannot resolve host address: ${host}:${port} (${resolved.reason})`);
    if (Number.isFinite(retryS)) {
      ctx.persist.exitStatus = 1;
      logger.log(1, 'Exiting due to fatal error');
      run.softSignal('SIGTERM', 'init_instance');
    } else {
      run.softSignal('SIGUSR1', 'init_instance');
    }
    return null;
  }
  return (remember ? ctx.persist.list?.resolved(resolved.addresses) : undefined) ?? resolved.addresses[0] ?? null;
}

/**
 * The run's link to `remote`; null (the run restarting) when it cannot be opened. `maxPacket`:
 * the largest packet the server may frame to us over TCP (the link's slot size).
 */
export async function openLinkSocket(ctx: ConnectContext, remote: RemoteEndpoint, maxPacket: number): Promise<LinkIO | null> {
  return ctx.entry.proto.transport === 'tcp-client' ? openTcpLink(ctx, remote, maxPacket) : openUdpSocket(ctx, remote);
}

async function openUdpSocket(ctx: ConnectContext, remote: RemoteEndpoint): Promise<UdpSocket | null> {
  const { entry, logger } = ctx;
  let udp: UdpSocket;
  try {
    let bindTo: { address: string; port: number } | Record<string, never> = {};
    if (entry.bind) {
      const bound = await resolveLinkLocal(entry, remote.family);
      if (!bound.ok) throw new Error(bound.reason);
      bindTo = { address: bound.local.address, port: entry.localPort };
    }
    udp = UdpSocket.open({
      family: remote.family,
      ...bindTo,
      ...socketBuffers(ctx.options),
      ...socketRouting(ctx.options, (problem) => logger.log(1, `WARNING: ${problem}`)),
      offload: ctx.options.udpOffload,
      coalesceUsecs: ctx.options.udpCoalesceUsecs,
    });
  } catch (error) {
    logger.log(1, `UDP socket: ${(error as Error).message}`);
    ctx.run.softSignal('SIGUSR1', 'socket-open-failed');
    return null;
  }
  const proto = remote.family === 6 ? 'UDPv6' : 'UDPv4';
  const local = udp.localAddress();
  logger.log(1, `${proto} link local${entry.bind ? `: ${printSockaddr(local.family, local.address, local.port)}` : ' (not bound)'}`);
  logger.log(1, `${proto} link remote: ${printSockaddr(remote.family, remote.address, remote.port)}`);
  const offload = udp.offload;
  logger.log(3, `UDP offload: GSO ${offload.gso ? 'on' : 'off'}, GRO ${offload.gro ? 'on' : 'off'}`);
  return udp;
}

/** --http-proxy: the CONNECT on the new connection to the proxy; false (the run restarting) when refused. */
async function throughProxy(ctx: ConnectContext, socket: Socket): Promise<boolean> {
  const { entry, logger, run } = ctx;
  const proxy = entry.httpProxy!;
  let credentials: ProxyCredentials | null;
  try {
    credentials = proxyCredentials(proxy, entry);
  } catch (error) {
    // misc.c get_user_pass: no username and password to be had ends the process.
    logger.log(1, `ERROR: http-proxy: ${(error as Error).message}`);
    socket.destroy();
    ctx.persist.exitStatus = 1;
    logger.log(1, 'Exiting due to fatal error');
    run.softSignal('SIGTERM', 'http-proxy-auth');
    return false;
  }
  const request = connectRequest({ host: entry.remote ?? '', port: entry.remotePort }, entry.httpProxyOptions, credentials);
  logger.log(4, `Send to HTTP proxy: '${request[0]}'`);
  const answer = await establishPassthru(socket, request, entry.connectTimeout * 1000, () => run.isOver());
  if (!answer.ok || run.isOver()) {
    socket.destroy();
    if (!answer.ok && !run.isOver()) {
      logger.log(1, answer.reason);
      run.softSignal('SIGUSR1', 'http-proxy-error');
    }
    return false;
  }
  logger.log(4, `HTTP proxy returned: '${answer.status}'`);
  if (answer.leftover.length > 0) socket.unshift(answer.leftover);
  return true;
}

/**
 * A TCP connection to `remote` within connect-timeout (socket.c socket_connect), as a LinkIO;
 * a refused or timed-out connection, and later a reset one, restart the run (SIGUSR1), which
 * moves on to the next remote as OpenVPN does.
 */
async function openTcpLink(ctx: ConnectContext, remote: RemoteEndpoint, maxPacket: number): Promise<StreamLink | null> {
  const { entry, logger, run } = ctx;
  const proto = remote.family === 6 ? 'TCPv6_CLIENT' : 'TCPv4_CLIENT';
  const where = printSockaddr(remote.family, remote.address, remote.port);
  let local: { localAddress?: string; localPort?: number } = {};
  if (entry.bind) {
    const bound = await resolveLinkLocal(entry, remote.family);
    if (!bound.ok) {
      logger.log(1, `TCP socket: ${bound.reason}`);
      run.softSignal('SIGUSR1', 'socket-open-failed');
      return null;
    }
    local = { localAddress: bound.local.address, localPort: entry.localPort };
  }
  logger.log(1, `Attempting to establish TCP connection with ${where}`);
  const socket: Socket = tcpConnect({
    host: remote.address,
    port: remote.port,
    family: remote.family,
    noDelay: ctx.options.tcpNodelay,
    ...local,
  });
  const error = await new Promise<string | null>((settle) => {
    const done = (result: string | null): void => {
      clearTimeout(timer);
      clearInterval(watch);
      settle(result);
    };
    const timer = setTimeout(() => done('connection timed out'), entry.connectTimeout * 1000);
    // A run stopped meanwhile gives up the connect at once rather than at the SYN timeout (the
    // run's own timers are cleared when it stops, so this one is not one of them).
    const watch = setInterval(() => {
      if (run.isOver()) done('stopped');
    }, 200);
    socket.once('connect', () => done(null));
    socket.once('error', (e: NodeJS.ErrnoException) => done(e.code ?? e.message));
  });
  if (error !== null || run.isOver()) {
    socket.destroy();
    if (error !== null && !run.isOver()) {
      logger.log(1, `TCP: connect to ${where} failed: ${error}`);
      run.softSignal('SIGUSR1', 'connection-failed');
    }
    return null;
  }
  logger.log(1, `TCP connection established with ${where}`);
  if (entry.httpProxy !== undefined && !(await throughProxy(ctx, socket))) return null;
  const bound = { address: socket.localAddress ?? '', port: socket.localPort ?? 0 };
  logger.log(1, `${proto} link local${entry.bind ? `: ${printSockaddr(remote.family, bound.address, bound.port)}` : ' (not bound)'}`);
  logger.log(1, `${proto} link remote: ${where}`);
  const link = new StreamLink(socket, { family: remote.family, address: remote.address, port: remote.port }, maxPacket, {
    onFramingError: (why) => logger.log(1, `WARNING: Bad encapsulated packet length from peer (${why}); resetting the connection`),
    onClose: () => {
      if (run.isOver()) return;
      logger.log(1, 'Connection reset, restarting [0]');
      run.softSignal('SIGUSR1', 'connection-reset');
    },
  });
  // The proxy exchange left the socket paused: its reader is in place now.
  if (entry.httpProxy !== undefined) socket.resume();
  return link;
}

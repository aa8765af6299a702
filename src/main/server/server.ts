// Server mode (OpenVPN's tunnel_server): the main thread opens the TUN device, owns the route
// table, the ifconfig pool and the per-second timers, starts the shard workers and moves packets
// between TUN and their rings. One call of startServer is one run of OpenVPN's inner loop; the
// lifecycle restarts it on SIGHUP / SIGUSR1.
import { randomBytes } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';

import { ConfigError, failOption as fail, type Options } from '../../shared/config';
import { readCounters, SHARD_COUNTERS } from '../../shared/counters';
import type { Logger } from '../../shared/log';
import { TunDevice, type AeadCipherName } from '../../shared/native';
import { aeadCipherName } from '../../shared/protocol/ncp';
import { STATS_ROW, type ShardToMain } from '../../shared/shard-protocol';
import { Admission, clientEnvironment } from './admission';
import { ClientRegistry, type ClientEntry } from './clients';
import { IfconfigPool } from './ifconfig-pool';
import { resolveLinkLocal } from '../link-local';
import { KeyKeeper } from '../persist-key';
import { addAddress4, addAddress6, addPointToPoint4, addRoute } from '../iproute';
import { RouteTable } from './routes';
import type { ClientEvent, ClientRecord, ServerSignal, ServerView } from '../ops/server-view';
import { ShardPool, type ShardHandle, type ShardTemplate } from './shard-pool';
import { socketBuffers } from '../socket-buffers';
import { TunPump } from './tun-pump';
import { VERSION_BANNER } from '../version';

export interface RunningServer extends ServerView {
  readonly tunName: string;
  readonly port: number;
  readonly shards: ShardPool;
  readonly pump: TunPump;
  /** Stops serving: tells clients RESTART when `notify`, closes sockets, workers and TUN. */
  stop(notify: boolean): Promise<void>;
  /** SIGUSR2: per-client and per-shard statistics to the log. */
  logStatistics(): void;
  /** Per-shard counters by name (metrics, tests). */
  shardCounters(): Record<string, number>[];
  /** ifconfig pool entries in use and free; null without a pool. */
  poolUsage(): { used: number; free: number } | null;
}

function checkServerOptions(options: Options): AeadCipherName[] {
  const unsupported = options.unsupported[0];
  if (unsupported !== undefined) throw new ConfigError(unsupported, unsupported.directive, unsupported.message);
  if (options.mode !== 'server') fail(options, 'mode', "server mode needs 'mode server' or 'server NETWORK NETMASK'");
  if (options.devType !== undefined && options.devType !== 'tun') fail(options, 'dev-type', `shardvpn serves '${options.devType}' devices are not supported: use dev tun`);
  if (options.proto.transport !== 'udp') fail(options, 'proto', `${options.proto.transport} is not supported; shardvpn serves UDP (proto udp, udp4 or udp6)`);
  if (options.managementClientAuth && options.management === undefined) fail(options, 'management-client-auth', 'needs --management: clients would wait for a verdict nobody can give');
  return options.dataCiphers.map((name) => aeadCipherName(name) ?? fail(options, 'data-ciphers', `cipher '${name}' is not supported (AES-128-GCM, AES-256-GCM, CHACHA20-POLY1305)`));
}

/** The options string a 2.6 server sends in key method 2 (only `cipher` is read by peers). */
function occOptionsString(options: Options, cipher: string): string {
  const proto = options.proto.family === 'ipv6' ? 'UDPv6' : 'UDPv4';
  return `V4,dev-type tun,link-mtu 1559,tun-mtu ${options.tunMtu},proto ${proto},cipher ${cipher},auth [null-digest],keysize 256,key-method 2,tls-server`;
}

async function configureTun(options: Options, name: string): Promise<void> {
  if (options.ifconfig !== undefined) {
    if (options.topology === 'subnet') await addAddress4(name, options.ifconfig.local, options.ifconfig.remoteNetmask);
    else await addPointToPoint4(name, options.ifconfig.local, options.ifconfig.remoteNetmask);
  }
  if (options.ifconfigIpv6 !== undefined) await addAddress6(name, options.ifconfigIpv6.local, options.ifconfigIpv6.netbits);
  for (const route of options.routes) {
    // OpenVPN's server routes go to the tun device (net30: through its point-to-point peer).
    if (options.topology === 'subnet' && options.ifconfig !== undefined && route.network === options.server?.network) continue;
    await addRoute(name, { network: route.network, netmask: route.netmask ?? '255.255.255.255', ...(route.metric !== undefined ? { metric: route.metric } : {}) });
  }
  for (const route of options.routesIpv6) {
    const [network, bits] = route.network.split('/');
    await addRoute(name, { network: network ?? '', netmask: Number(bits ?? 128), ...(route.metric !== undefined ? { metric: route.metric } : {}) }, 6);
  }
}

/** What a run leaves to the next: the persist-tun device, the persist-key keys. */
export interface RestartKeeper {
  tun: TunDevice | null;
  readonly keys: KeyKeeper;
}

export async function startServer(
  options: Options,
  logger: Logger,
  onSignal: (signal: ServerSignal) => void,
  keeper: RestartKeeper = { tun: null, keys: new KeyKeeper() },
): Promise<RunningServer> {
  const dataCiphers = checkServerOptions(options);
  const tls = keeper.keys.tlsMaterial(options);
  const wrap = keeper.keys.wrap(options, options, 'server');
  const workers = options.workers ?? os.availableParallelism();
  const bound = await resolveLinkLocal(options);
  if (!bound.ok) fail(options, 'local', bound.reason);
  const link = bound.local;

  const kept = options.persistTun ? keeper.tun : null;
  const tun = kept ?? TunDevice.open({ name: options.dev === undefined || options.dev === 'tun' ? '' : options.dev, mtu: options.tunMtu });
  const releaseTun = (): void => {
    if (options.persistTun) {
      keeper.tun = tun;
    } else {
      tun.close();
      keeper.tun = null;
    }
  };
  const cleanups: (() => void)[] = [releaseTun];
  try {
    if (kept === null) {
      await configureTun(options, tun.name);
      logger.log(1, `TUN/TAP device ${tun.name} opened`);
    } else {
      logger.log(1, `Preserving previous TUN/TAP instance: ${tun.name}`);
    }

    const routes = new RouteTable();
    const pool =
      options.ifconfigPool !== undefined || options.ifconfigIpv6Pool !== undefined
        ? new IfconfigPool({
            topology: options.topology,
            ...(options.ifconfigPool !== undefined ? { ipv4: options.ifconfigPool } : {}),
            ...(options.ifconfigIpv6Pool !== undefined ? { ipv6: options.ifconfigIpv6Pool } : {}),
            duplicateCn: options.duplicateCn,
          })
        : null;
    const persist = options.ifconfigPoolPersist;
    if (pool !== null && persist !== undefined) {
      try {
        const loaded = pool.loadPersistFile(readFileSync(persist.resolved, 'utf8'));
        logger.log(3, `ifconfig-pool-persist ${persist.path}: ${loaded.loaded} entries`);
      } catch {
        // No file yet: it is written at the first save.
      }
    }
    const savePool = (): void => {
      if (pool === null || persist === undefined) return;
      try {
        writeFileSync(`${persist.resolved}.tmp`, pool.toPersistFile());
        renameSync(`${persist.resolved}.tmp`, persist.resolved);
      } catch (error) {
        logger.log(1, `ifconfig-pool-persist ${persist.path}: ${(error as Error).message}`);
      }
    };
    const registry = new ClientRegistry(options, pool, routes);
    const listeners = new Set<(event: ClientEvent) => void>();
    const emit = (event: ClientEvent): void => {
      for (const listener of listeners) listener(event);
    };

    const template: ShardTemplate = {
      cookieKey: randomBytes(32),
      tunFd: tun.fd,
      tunName: tun.name,
      clientToClient: options.clientToClient,
      tls,
      wrap,
      ...(options.remoteCertTls !== undefined ? { remoteCertTls: options.remoteCertTls } : {}),
      ...(options.remoteCertEku !== undefined ? { remoteCertEku: options.remoteCertEku } : {}),
      ...(options.verifyX509Name !== undefined ? { verifyX509Name: options.verifyX509Name } : {}),
      push: options.push,
      occOptions: occOptionsString(options, dataCiphers[0] ?? 'AES-256-GCM'),
      dataCiphers,
      ...(options.dataCiphersFallback !== undefined ? { dataCiphersFallback: options.dataCiphersFallback } : {}),
      handWindowS: options.handWindow,
      tlsTimeoutS: options.tlsTimeout,
      renegSec: options.renegSec,
      renegBytes: Math.max(0, options.renegBytes),
      renegPkts: options.renegPkts,
      tranWindowS: options.tranWindow,
      pingS: options.ping,
      pingRestartS: options.pingRecTimeout,
      replayWindow: options.replayWindow,
      replayTime: options.replayTime,
      explicitExitNotify: options.explicitExitNotify,
      maxClientsPerShard: options.maxClients,
      userPassVerify: options.authUserPassVerify !== undefined,
      inactive: options.inactive ?? { seconds: 0, bytes: 0 },
      mssfix: options.mssfix,
      verb: options.verb,
    };

    let pump: TunPump | null = null;
    const shards: ShardPool = ShardPool.open(
      workers,
      { ...link, port: options.localPort, ...socketBuffers(options) },
      template,
      {
        message: (shard, message) => onShardMessage(shard, message),
        died: (shard, reason) => {
          const awaited = admission.shardDied(shard.index);
          const gone = registry.releaseShard(shard.index);
          logger.log(1, `shard ${shard.index} died (${reason}): restarted on the same socket; ${gone.length} of its clients must reconnect`);
          for (const entry of gone) if (!awaited.has(entry.peerId)) admission.disconnected(entry, entry.stats?.bytesReceived ?? 0, entry.stats?.bytesSent ?? 0);
          pump?.restartShard(shard.index);
        },
      },
    );
    cleanups.push(() => void shards.stop(false));
    logger.log(1, `${link.family === 6 ? 'UDPv6' : 'UDPv4'} link local (bound): [AF_INET${link.family === 6 ? '6' : ''}]${link.address}:${options.localPort}${link.dualStack ? ' (dual-stack)' : ''}`);

    const admission = new Admission(options, registry, logger, { post: (index, message) => shards.post(index, message), emit });

    const onShardMessage = (shard: ShardHandle, message: ShardToMain): void => {
      switch (message.type) {
        case 'client-auth':
          admission.authenticated(shard.index, message);
          return;
        case 'client-established': {
          const entry = registry.get(message.peerId);
          if (entry === undefined) return;
          entry.established = true;
          entry.cipher = message.cipher;
          entry.stats = message.stats;
          logger.log(2, `${entry.commonName}/${entry.realAddress.address}:${entry.realAddress.port} MULTI: primary virtual IP: ${entry.virtual4 ?? entry.virtual6 ?? 'none'} (peer-id ${entry.peerId}, shard ${entry.shard}, ${message.cipher})`);
          emit({ type: 'established', cid: entry.cid, env: clientEnvironment(entry) });
          if (entry.virtual4 !== null) emit({ type: 'address', cid: entry.cid, address: entry.virtual4, primary: true });
          return;
        }
        case 'client-gone': {
          const announced = admission.gone(message.peerId);
          const entry = registry.release(message.peerId, message.bytesReceived, message.bytesSent);
          if (entry === undefined || !announced) return;
          logger.log(2, `${entry.commonName}/${entry.realAddress.address}:${entry.realAddress.port} disconnected: ${message.reason}`);
          admission.disconnected(entry, message.bytesReceived, message.bytesSent);
          return;
        }
        case 'stats': {
          const rows = message.rows;
          for (let at = 0; at + STATS_ROW <= rows.length; at += STATS_ROW) {
            const stats = registry.get(rows[at]!)?.stats;
            if (stats === undefined || stats === null) continue;
            stats.bytesReceived = rows[at + 1]!;
            stats.bytesSent = rows[at + 2]!;
            stats.lastRef = rows[at + 3]!;
          }
          for (const { peerId, realAddress } of message.floated) {
            const stats = registry.get(peerId)?.stats;
            if (stats !== undefined && stats !== null) stats.realAddress = realAddress;
          }
          return;
        }
        case 'log':
          logger.log(message.level, message.message, message.category);
          return;
        case 'ready':
        case 'stopped':
          return;
      }
    };

    await shards.ready();
    pump = new TunPump(tun, routes, () => shards.shards, options.clientToClient);
    pump.start();

    let statsId = 0;
    let seconds = 0;
    const perSecond = setInterval(() => {
      seconds++;
      shards.broadcast({ type: 'stats-request', id: ++statsId });
      if (persist !== undefined && persist.refreshSeconds > 0 && seconds % persist.refreshSeconds === 0) savePool();
    }, 1000);
    cleanups.push(() => clearInterval(perSecond));

    if (options.writepid !== undefined) writeFileSync(options.writepid.resolved, `${process.pid}\n`);
    const port = shards.shards[0]?.socket.localAddress().port ?? options.localPort;
    logger.log(1, `shardvpn server on UDP port ${port} with ${workers} shard${workers === 1 ? '' : 's'}`);

    const finder = (predicate: (entry: ClientEntry) => boolean): ClientEntry[] => [...registry.entries()].filter(predicate);
    const kill = (entries: ClientEntry[], message: string | null): number => {
      for (const entry of entries) shards.post(entry.shard, { type: 'client-kill', peerId: entry.peerId, message });
      return entries.length;
    };

    const server: RunningServer = {
      title: VERSION_BANNER,
      pid: process.pid,
      statusVersion: options.statusVersion,
      tunName: tun.name,
      port,
      shards,
      pump,
      clients: (): readonly ClientRecord[] => registry.records(),
      loadStats: () => {
        let bytesIn = registry.totalBytesIn;
        let bytesOut = registry.totalBytesOut;
        for (const entry of registry.entries()) {
          bytesIn += entry.stats?.bytesReceived ?? 0;
          bytesOut += entry.stats?.bytesSent ?? 0;
        }
        return { nclients: registry.records().length, bytesIn, bytesOut };
      },
      killByCommonName: (cn) => kill(finder((e) => e.commonName === cn), null),
      killByAddress: (address, port) => kill(finder((e) => e.realAddress.address === address && e.realAddress.port === port), null),
      clientKill: (cid, message) => kill(finder((e) => e.cid === cid), message ?? 'RESTART') > 0,
      signal: onSignal,
      clientAuth: (cid, keyId, verdict) => admission.clientAuth(cid, keyId, verdict),
      clientPendingAuth: (cid, keyId, extra, timeoutS) => admission.clientPendingAuth(cid, keyId, extra, timeoutS),
      verb: () => logger.verb,
      setVerb: (level) => {
        logger.verb = level;
        template.verb = level;
        shards.broadcast({ type: 'set-verb', verb: level });
      },
      restartShard: (index) => {
        if (!Number.isInteger(index) || index < 0 || index >= shards.size) return false;
        logger.log(1, `shard ${index}: restart requested by the management interface`);
        void shards.kill(index);
        return true;
      },
      onClientEvent: (listener) => {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
      shardCounters: () => shards.shards.map((s) => readCounters(s.counters)),
      poolUsage: () => (pool === null ? null : { used: pool.used, free: pool.free }),
      logStatistics: () => {
        for (const record of registry.records()) {
          logger.log(0, `${record.commonName ?? 'UNDEF'},${record.realAddress.address}:${record.realAddress.port},${record.virtualAddress ?? ''},${record.bytesReceived},${record.bytesSent},peer-id ${record.peerId},shard ${record.shard}`);
        }
        shards.shards.forEach((shard, index) => {
          const counters = readCounters(shard.counters);
          logger.log(0, `shard ${index}: ${SHARD_COUNTERS.map((name) => `${name}=${Math.round(counters[name] * 100) / 100}`).join(' ')}`);
          for (const [name, ring] of [['to-tun', shard.toTun], ['from-tun', shard.fromTun]] as const) {
            logger.log(0, `shard ${index} ${name} ring: size=${ring.size} drops=${ring.drops} sleeps=${ring.sleeps} notifies=${ring.notifies} missedWakes=${ring.missedWakes}`);
          }
        });
        const p = pump!.counters;
        logger.log(0, `tun: read ${p.tunRead} written ${p.tunWritten} no-route ${p.noRoute} client-to-client ${p.clientToClient} ring-full ${p.ringFull} write-drops ${p.tunWriteDrops}`);
      },
      stop: async (notify) => {
        admission.stop();
        clearInterval(perSecond);
        await shards.stop(notify);
        pump?.stop();
        savePool();
        releaseTun();
        logger.log(1, 'server stopped');
      },
    };
    return server;
  } catch (error) {
    for (const cleanup of cleanups.reverse()) cleanup();
    throw error;
  }
}

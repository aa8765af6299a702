// Client mode (OpenVPN's tunnel_point_to_point): one context on the main thread.
// ClientProcess keeps what OpenVPN keeps across SIGUSR1 restarts (the connection list,
// credentials, a persist-tun device); each start() is one ClientRun, one run of OpenVPN's inner
// loop, begun by runLifecycle. A run is its steps: connect.ts (the server's address and the UDP
// socket), link.ts (the packet path: TUN and UDP polled in this thread's loop),
// control-channel.ts (TLS, the push and the server's messages), tunnel.ts (the TUN device and
// its routes) and timeouts.ts (keepalive, --inactive, server-poll-timeout).
import { performance } from 'node:perf_hooks';

import { ConfigError, failOption as fail, type ConnectionEntry, type Options } from '../../shared/config';
import type { Logger } from '../../shared/log';
import type { TunDevice } from '../../shared/native';
import type { DataCipherName } from '../../shared/protocol/data-format';
import { maxMss } from '../../shared/protocol/mss';
import { blockIpv6Answer } from './tun-network';
import { writeOccMessage } from '../../shared/protocol/occ';
import { writePingMessage } from '../../shared/protocol/ping';
import type { PushOptions } from '../../shared/protocol/push-options';
import type { TlsMaterial } from '../../shared/session/types';
import type { WrapConfig } from '../../shared/session/control-wrap';
import { loadCredentials, type Credentials } from './auth-user-pass';
import { chooseRemote, openLinkSocket, type ConnectContext } from './connect';
import { ClientControlChannel } from './control-channel';
import { ClientLink, emptyLinkStatistics } from './link';
import { ConnectionList, type RemoteAddress } from './remotes';
import type { ClientPersist, RemoteEndpoint, RunControl, SessionToken } from './run-context';
import { RunTimeouts } from './timeouts';
import { ClientTunnel } from './tunnel';
import type { AppliedNetwork } from './tun-network';
import type { TunnelFacts } from '../scripts';
import type { Running } from '../lifecycle';
import { KeyKeeper } from '../persist-key';
import { compressionFraming, dataChannelSettings, refuseUnsupported } from '../run-checks';
import { pushedFraming } from '../../shared/protocol/compress-framing';
import type { ServerSignal } from '../ops/server-view';
import { VERSION_BANNER } from '../version';

const TICK_MS = 100;

/** What the config must say for shardvpn to run it as a client. */
export function checkClientOptions(options: Options): DataCipherName[] {
  refuseUnsupported(options);
  if (!options.tlsClient) fail(options, 'client', "client mode needs 'client' (or 'tls-client' with 'pull')");
  if (options.devType !== undefined && options.devType !== 'tun' && options.devType !== 'null')
    fail(options, 'dev-type', `'${options.devType}' devices are not supported: use dev tun`);
  for (const c of options.connections) {
    if (c.proto.transport === 'tcp-server')
      throw new ConfigError(c, 'proto', "a client connects: use 'proto tcp-client' (or 'proto tcp' with 'client')");
    if (c.httpProxyOptions !== undefined && c.httpProxy === undefined)
      throw new ConfigError(c, 'http-proxy-option', '--http-proxy-option requires --http-proxy');
    if (c.httpProxy !== undefined && c.proto.transport !== 'tcp-client')
      throw new ConfigError(c, 'http-proxy', '--http-proxy MUST be used in TCP Client mode (i.e. --proto tcp-client)');
    // The TCP link is node:net's socket, which takes no socket options before it connects.
    if (c.proto.transport === 'tcp-client' && (options.mark !== undefined || options.bindDev !== undefined))
      fail(
        options,
        options.mark !== undefined ? 'mark' : 'bind-dev',
        'mark and bind-dev work over UDP only on a shardvpn client: use proto udp',
      );
  }
  compressionFraming(options);
  return dataChannelSettings(options).ciphers;
}

/** State kept across SIGUSR1 restarts (OpenVPN's c->persist and the connection list). */
export class ClientProcess implements ClientPersist {
  list: ConnectionList | null = null;
  private listFor: Options | null = null;
  lastSignal: ServerSignal | null = null;
  tun: TunDevice | null = null;
  applied: AppliedNetwork | null = null;
  keptFacts: TunnelFacts | null = null;
  credentials: Credentials | null = null;
  /** Kept over SIGUSR1 and SIGHUP alike, as OpenVPN keeps its auth_token; AUTH_FAILED drops it. */
  authToken: SessionToken | null = null;
  exitStatus = 0;
  /** persist-key: keys kept over SIGUSR1 (a run after `user nobody` cannot read them). */
  private readonly keys = new KeyKeeper();
  private runs = 0;

  constructor(
    private readonly logger: Logger,
    readonly configFile?: string,
  ) {}

  notifyOn(_options: Options, signal: ServerSignal): boolean {
    this.lastSignal = signal;
    return signal === 'SIGTERM';
  }

  async start(options: Options, raise: (signal: ServerSignal, reason?: string) => void): Promise<Running> {
    const dataCiphers = checkClientOptions(options);
    const tls = this.keys.tlsMaterial(options);
    if (this.listFor !== options || this.list === null) {
      // A new config (SIGHUP): its own remotes from the first, and credentials read again.
      if (this.listFor !== null) this.credentials = null;
      this.list = new ConnectionList(options.connections, options.remoteRandom);
      this.listFor = options;
    }
    const next = this.list.next(options.connectRetryMax);
    if (!next.ok) throw new Error(next.reason);
    const entry = next.entry;
    const wrap = this.keys.wrap(options, entry, 'client');
    // A session token stands in for the password: nothing to ask for while the server takes it.
    if (this.credentials === null && this.authToken === null && options.authUserPass !== undefined)
      this.credentials = loadCredentials(options);
    if (this.runs === 0) this.logger.log(1, `${VERSION_BANNER}`);
    const pauseS = this.runs === 0 ? 0 : this.list.restartPauseS(entry);
    this.runs++;
    this.lastSignal = null;
    const run = new ClientRun({
      persist: this,
      options,
      entry,
      keptAddress: next.address,
      dataCiphers,
      tls,
      wrap,
      logger: this.logger,
      raise,
    });
    run.begin(pauseS);
    return run;
  }
}

/** What one run is started with. */
interface ClientRunParams {
  readonly persist: ClientPersist;
  readonly options: Options;
  readonly entry: ConnectionEntry;
  /** An address of the entry's name kept from an earlier run (null: resolve it now). */
  readonly keptAddress: RemoteAddress | null;
  readonly dataCiphers: readonly DataCipherName[];
  readonly tls: TlsMaterial;
  readonly wrap: WrapConfig;
  readonly logger: Logger;
  /** Hands a signal to the lifecycle; with a reason, one the run raised itself. */
  readonly raise: (signal: ServerSignal, reason?: string) => void;
}

type RunState = 'waiting' | 'connecting' | 'pushed' | 'connected' | 'ending' | 'stopped';

/** One run of the inner loop: resolve, connect, handshake, push, tunnel; until a signal. */
class ClientRun implements Running, RunControl {
  private state: RunState = 'waiting';
  private timers: NodeJS.Timeout[] = [];
  private ticker: NodeJS.Timeout | null = null;
  private readonly timeouts: RunTimeouts;
  private readonly tunnel: ClientTunnel;
  private link: ClientLink | null = null;
  private control: ClientControlChannel | null = null;
  private remote: RemoteEndpoint | null = null;
  private selfEnded = false;
  private readonly slot: number;

  constructor(private readonly params: ClientRunParams) {
    this.timeouts = new RunTimeouts(params.options, params.entry, performance.now());
    this.tunnel = new ClientTunnel({ ...this.context(), attachTun: (tun, network) => this.link?.attachTun(tun, blockIpv6Answer(network)) });
    this.slot = Math.max(2048, params.entry.tunMtu + 256);
  }

  begin(pauseS: number): void {
    if (pauseS > 0) {
      this.params.logger.log(1, `Restart pause, ${pauseS} second(s)`);
      this.timers.push(setTimeout(() => void this.connect(), pauseS * 1000));
    } else {
      void this.connect();
    }
  }

  private context(): ConnectContext {
    const { options, entry, persist, logger } = this.params;
    return { options, entry, persist, logger, run: this, addTimer: (timer) => this.timers.push(timer) };
  }

  /** The server's address, the socket to it, the link over it, then the control session. */
  private async connect(): Promise<void> {
    if (this.state !== 'waiting') return;
    this.state = 'connecting';
    const ctx = this.context();
    const remote = await chooseRemote(ctx, this.params.keptAddress);
    if (remote === null) return;
    this.remote = remote;
    const udp = await openLinkSocket(ctx, remote, this.slot);
    if (udp === null) return;
    // stop() may have run while the socket opened (a name to resolve, a TCP connect).
    if (this.isOver()) {
      udp.close();
      return;
    }
    const timeouts = this.timeouts;
    this.link = new ClientLink(udp, remote, this.slot, {
      onControlPacket: (wire) => {
        if (!this.isOver()) this.control?.receivePacket(wire);
      },
      onDataReceived: (now) => timeouts.received(now),
      onSent: (now) => timeouts.sent(now),
      onOccExit: () => {
        this.params.logger.log(1, 'OCC exit message received by peer');
        this.softSignal('SIGUSR1', 'remote-exit');
      },
    });
    this.link.framer.kind = compressionFraming(this.params.options);
    const { dataCiphers, tls, wrap } = this.params;
    this.control = new ClientControlChannel({
      ...ctx,
      remote,
      dataCiphers,
      tls,
      wrap,
      timeouts,
      sendPacket: (wire) => this.link?.sendControl(wire) ?? false,
      installKey: (key, channel) => {
        if (this.link === null) return key.destroy();
        this.link.maxMss = maxMss(this.params.entry.mssfix, remote.family, channel.peerId !== null);
        this.link.installKey(key);
      },
      retireKey: (keyId) => this.link?.retireKey(keyId),
      onPushed: (pushed) => {
        // A pushed comp-lzo / compress (e.g. "comp-lzo no") sets the framing, as in OpenVPN.
        for (const option of pushed.extra ?? []) {
          const kind = pushedFraming(option);
          if (kind !== undefined && this.link !== null) this.link.framer.kind = kind;
        }
        void this.tunnelUp(pushed, remote);
      },
    });
    this.control.start();
    timeouts.connecting(performance.now());
    this.ticker = setInterval(() => this.tick(), TICK_MS);
  }

  private async tunnelUp(pushed: PushOptions, remote: RemoteEndpoint): Promise<void> {
    this.state = 'pushed';
    if (!(await this.tunnel.up(pushed, remote, this.control?.serverCn ?? ''))) return;
    this.state = 'connected';
    this.params.persist.list?.completed();
    this.params.logger.log(1, 'Initialization Sequence Completed');
  }

  private tick(): void {
    if (this.isOver()) return;
    const now = performance.now();
    const control = this.control;
    control?.tick(now);
    if (this.isOver()) return;
    const tunnel = this.link?.stats;
    const action = this.timeouts.poll(now, {
      heardFromServer: control?.heardFromServer ?? false,
      tunnelBytes: tunnel === undefined ? 0 : tunnel.tunReadBytes + tunnel.tunWriteBytes,
      serverCn: control?.serverCn ?? '',
    });
    switch (action.kind) {
      case 'ping':
        this.link?.sendDataMessage(writePingMessage);
        break;
      case 'signal':
        this.params.logger.log(1, action.log);
        this.softSignal(action.signal, action.reason);
        return;
      case 'none':
        break;
    }
    control?.renegotiateIfDue(this.link?.currentKey ?? null);
  }

  isOver(): boolean {
    return this.state === 'ending' || this.state === 'stopped';
  }

  softSignal(signal: ServerSignal, text: string): void {
    if (this.isOver()) return;
    this.selfEnded = true;
    this.state = 'ending';
    // The lifecycle logs it, as SIGUSR1[soft,TEXT] received.
    this.params.raise(signal, text);
  }

  async stop(notify: boolean): Promise<void> {
    const wasConnected = (this.link?.currentKey ?? null) !== null;
    const n = this.params.entry.explicitExitNotify;
    if (this.state !== 'stopped' && notify && !this.selfEnded && wasConnected && n > 0) await this.notifyExit(n);
    this.state = 'stopped';
    for (const t of this.timers) clearTimeout(t);
    this.timers = [];
    if (this.ticker !== null) clearInterval(this.ticker);
    this.ticker = null;
    this.control?.close();
    this.control = null;
    this.link?.close();
    this.link = null;
    await this.tunnel.close(this.remote);
  }

  /** explicit-exit-notify n: EXIT on the control channel (cc-exit), else OCC_EXIT once a second for n seconds. */
  private async notifyExit(seconds: number): Promise<void> {
    this.params.logger.log(1, 'SIGTERM received, sending exit notification to peer');
    const ccExit = this.control?.ccExit ?? false;
    if (ccExit) this.control?.sendExit();
    const deadline = performance.now() + seconds * 1000;
    for (;;) {
      if (!ccExit) this.link?.sendDataMessage((memory, offset) => writeOccMessage(memory, offset, { op: 'exit' }));
      const left = deadline - performance.now();
      if (left <= 0) break;
      await new Promise((resolve) => setTimeout(resolve, Math.min(1000, left)));
    }
  }

  logStatistics(): void {
    const stats = this.link?.stats ?? emptyLinkStatistics();
    const log = (line: string): void => this.params.logger.log(0, line);
    log('OpenVPN STATISTICS');
    log(`Updated,${new Date().toISOString().replace('T', ' ').slice(0, 19)}`);
    log(`TUN/TAP read bytes,${stats.tunReadBytes}`);
    log(`TUN/TAP write bytes,${stats.tunWriteBytes}`);
    log(`TCP/UDP read bytes,${stats.linkReadBytes}`);
    log(`TCP/UDP write bytes,${stats.linkWriteBytes}`);
    log(`Auth read bytes,${stats.linkReadBytesAuth}`);
    if (stats.foreignDrops > 0) log(`Packets from other addresses dropped,${stats.foreignDrops}`);
    // shardvpn's own lines: the UDP socket's segmentation offload (udp-offload).
    const offload = this.link?.offload ?? null;
    if (offload !== null && (offload.gso || offload.gro || offload.gsoFallbacks > 0)) {
      log(`UDP GSO datagrams,${offload.gsoDatagrams}`);
      log(`UDP GSO messages,${offload.gsoMessages}`);
      log(`UDP GSO fallbacks,${offload.gsoFallbacks}`);
      log(`UDP GRO messages,${offload.groMessages}`);
      log(`UDP GRO datagrams,${offload.groDatagrams}`);
    }
    // And the TUN device's (tun-offload).
    const tunOffload = this.link?.tunOffload ?? null;
    if (tunOffload?.vnetHeader === true) {
      log(`TUN superpackets read,${tunOffload.superpackets}`);
      log(`TUN superpacket segments,${tunOffload.segments}`);
      log(`TUN coalesced writes,${tunOffload.coalescedWrites}`);
      log(`TUN coalesced packets,${tunOffload.coalescedPackets}`);
      log(`TUN offload drops,${tunOffload.readDrops}`);
      log(`TUN coalesce refusals,${tunOffload.coalesceRefusals}`);
    }
    log('END');
  }
}

// Client mode (OpenVPN's tunnel_point_to_point): one context on the main thread. The packet
// path (TUN and one UDP socket polled in this thread's loop) is link.ts; this file runs the
// shared ControlSession as the client, the push, the TUN set-up and the restarts.
// ClientProcess keeps what OpenVPN keeps across SIGUSR1 restarts (the connection list,
// credentials, a persist-tun device); each start() is one run of OpenVPN's inner loop, begun
// by runLifecycle.
import { performance } from 'node:perf_hooks';

import { ConfigError, failOption as fail, type ConnectionEntry, type Options } from '../../shared/config';
import type { Logger } from '../../shared/log';
import { TunDevice, UdpSocket, type AeadCipherName } from '../../shared/native';
import { parseControlMessage } from '../../shared/protocol/control-message';
import { DataChannelKey } from '../../shared/protocol/data-channel';
import { IV_PROTO_CC_EXIT_NOTIFY, IV_PROTO_DATA_V2, IV_PROTO_REQUEST_PUSH, IV_PROTO_TLS_KEY_EXPORT, buildPeerInfo } from '../../shared/protocol/key-method2';
import { aeadCipherName, checkClientCipher, normalizeCipherName, occStringCipher } from '../../shared/protocol/ncp';
import { InactivityTimer } from '../../shared/protocol/inactivity';
import { maxMss } from '../../shared/protocol/mss';
import { writeOccMessage } from '../../shared/protocol/occ';
import { P_OPCODE_SHIFT } from '../../shared/protocol/opcodes';
import { KeepaliveTimer, PRE_PULL_INITIAL_PING_RESTART_S, writePingMessage } from '../../shared/protocol/ping';
import { PushReplyCollector, type PushOptions } from '../../shared/protocol/push-options';
import { ControlSession, type SessionEvent } from '../../shared/session';
import type { TlsMaterial } from '../../shared/session/types';
import type { WrapConfig } from '../../shared/session/control-wrap';
import { loadCredentials, type Credentials } from './auth-user-pass';
import { applyNetwork, applyRouteNopull, clientNetwork, sameNetwork, undoNetwork, type AppliedNetwork, type ClientNetwork } from './tun-network';
import { ConnectionList, resolveRemote, type RemoteAddress } from './remotes';
import type { Running } from '../lifecycle';
import { KeyKeeper } from '../persist-key';
import { resolveLinkLocal } from '../link-local';
import { dropPrivileges } from '../privileges';
import { socketBuffers } from '../socket-buffers';
import { ClientLink } from './link';
import { runScript, type TunnelFacts } from '../scripts';
import type { ServerSignal } from '../ops/server-view';
import { VERSION_BANNER } from '../version';

const TICK_MS = 100;
const PUSH_REQUEST_INTERVAL_MS = 5000;
const RESOLVE_RETRY_MS = 5000;

/** What the config must say for shardvpn to run it as a client. */
export function checkClientOptions(options: Options): AeadCipherName[] {
  const unsupported = options.unsupported[0];
  if (unsupported !== undefined) throw new ConfigError(unsupported, unsupported.directive, unsupported.message);
  if (!options.tlsClient) fail(options, 'client', "client mode needs 'client' (or 'tls-client' with 'pull')");
  if (options.devType !== undefined && options.devType !== 'tun' && options.devType !== 'null') fail(options, 'dev-type', `'${options.devType}' devices are not supported: use dev tun`);
  for (const c of options.connections) {
    if (c.proto.transport !== 'udp') throw new ConfigError(c, 'proto', `${c.proto.transport} is not supported; shardvpn's client speaks UDP (proto udp, udp4 or udp6)`);
  }
  return options.dataCiphers.map((name) => aeadCipherName(name) ?? fail(options, 'data-ciphers', `cipher '${name}' is not supported (AES-128-GCM, AES-256-GCM, CHACHA20-POLY1305)`));
}

function formatPeer(family: 4 | 6, address: string, port: number): string {
  return family === 6 ? `[AF_INET6]${address}:${port}` : `[AF_INET]${address}:${port}`;
}

/** State kept across SIGUSR1 restarts (OpenVPN's c->persist and the connection list). */
export class ClientProcess {
  list: ConnectionList | null = null;
  private listFor: Options | null = null;
  lastSignal: ServerSignal | null = null;
  /** persist-tun: the device and what is on it, kept over SIGUSR1. */
  tun: TunDevice | null = null;
  applied: AppliedNetwork | null = null;
  credentials: Credentials | null = null;
  /** Raised above 0 by a fatal error the run hit (the process then exits with it). */
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
    const ciphers = checkClientOptions(options);
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
    if (this.credentials === null && options.authUserPass !== undefined) this.credentials = loadCredentials(options);
    if (this.runs === 0) this.logger.log(1, `${VERSION_BANNER}`);
    const pauseS = this.runs === 0 ? 0 : this.list.restartPauseS(entry);
    this.runs++;
    this.lastSignal = null;
    const run = new ClientRun(this, options, entry, next.address, ciphers, tls, wrap, this.logger, raise);
    run.begin(pauseS);
    return run;
  }
}

type RunState = 'waiting' | 'connecting' | 'pushed' | 'connected' | 'ending' | 'stopped';

/** One run of the inner loop: resolve, connect, handshake, push, tunnel; until a signal. */
class ClientRun implements Running {
  private state: RunState = 'waiting';
  private timers: NodeJS.Timeout[] = [];
  private ticker: NodeJS.Timeout | null = null;
  /** --inactive: this run's tunnel traffic against the timeout. */
  private readonly inactivity: InactivityTimer;
  private link: ClientLink | null = null;
  private session: ControlSession | null = null;
  private remote: { family: 4 | 6; address: string; port: number } | null = null;
  private readonly keepalive: KeepaliveTimer;
  private connectStart = 0;
  private firstPacket = false;
  private serverCn = '';
  private serverOcc = '';
  private pushRequestedAt = -1;
  private readonly collector: PushReplyCollector;
  private pushed = false;
  private cipher: AeadCipherName | null = null;
  private peerId: number | null = null;
  private ccExit = false;
  private readonly keyBlocks = new Map<number, Buffer>();
  private tun: TunDevice | null = null;
  private facts: TunnelFacts | null = null;
  private selfEnded = false;
  private readonly slot: number;

  constructor(
    private readonly proc: ClientProcess,
    private readonly options: Options,
    private readonly entry: ConnectionEntry,
    /** An address of the entry's name kept from an earlier run (null: resolve it now). */
    private readonly keptAddress: RemoteAddress | null,
    private readonly dataCiphers: AeadCipherName[],
    private readonly tls: TlsMaterial,
    private readonly wrap: WrapConfig,
    private readonly logger: Logger,
    private readonly raise: (signal: ServerSignal, reason?: string) => void,
  ) {
    const now = performance.now();
    const restart = options.pingRecTimeout > 0 && options.pingRecAction === 'restart' ? options.pingRecTimeout : PRE_PULL_INITIAL_PING_RESTART_S;
    this.keepalive = new KeepaliveTimer({ pingS: options.ping, pingRestartS: restart, pingExitS: options.pingRecAction === 'exit' ? options.pingRecTimeout : 0 }, now);
    this.collector = new PushReplyCollector(options.pullFilters);
    this.slot = Math.max(2048, entry.tunMtu + 256);
    this.inactivity = new InactivityTimer(options.inactive, now);
  }

  begin(pauseS: number): void {
    if (pauseS > 0) {
      this.logger.log(1, `Restart pause, ${pauseS} second(s)`);
      this.timers.push(setTimeout(() => void this.connect(), pauseS * 1000));
    } else {
      void this.connect();
    }
  }

  // ------------------------------------------------------------------------------------------
  // Connecting

  /** Resolves the remote's name (resolv-retry); the list keeps the other addresses for later runs. */
  private async resolve(host: string): Promise<RemoteAddress | null> {
    // resolv-retry infinite (the default): one try, a failure restarts with the next remote;
    // resolv-retry N: retry every 5 s for N seconds, then give up (socket.c resolve_remote).
    const retryS = this.options.resolvRetry;
    const giveUpAt = performance.now() + (Number.isFinite(retryS) ? retryS * 1000 : 0);
    let resolved = await resolveRemote(host, this.entry.proto.family);
    while (!resolved.ok && Number.isFinite(retryS) && performance.now() + RESOLVE_RETRY_MS <= giveUpAt && !this.isOver()) {
      this.logger.log(1, `RESOLVE: Cannot resolve host address: ${host}:${this.entry.remotePort} (${resolved.reason})`);
      await new Promise((resolve) => this.timers.push(setTimeout(resolve, RESOLVE_RETRY_MS)));
      if (this.isOver()) return null;
      resolved = await resolveRemote(host, this.entry.proto.family);
    }
    if (this.isOver()) return null;
    if (!resolved.ok) {
      this.logger.log(1, `RESOLVE: Cannot resolve host address: ${host}:${this.entry.remotePort} (${resolved.reason})`);
      if (Number.isFinite(retryS)) {
        this.proc.exitStatus = 1;
        this.logger.log(1, 'Exiting due to fatal error');
        this.softSignal('SIGTERM', 'init_instance');
      } else {
        this.softSignal('SIGUSR1', 'init_instance');
      }
      return null;
    }
    return this.proc.list?.resolved(resolved.addresses) ?? resolved.addresses[0] ?? null;
  }

  private async connect(): Promise<void> {
    if (this.state !== 'waiting') return;
    this.state = 'connecting';
    const host = this.entry.remote ?? '';
    let chosen = this.keptAddress;
    if (chosen !== null) {
      this.logger.log(1, `TCP/UDP: Preserving recently used remote address: ${formatPeer(chosen.family, chosen.address, this.entry.remotePort)}`);
    } else {
      const picked = await this.resolve(host);
      if (picked === null) return;
      chosen = picked;
    }
    const remote = { family: chosen.family, address: chosen.address, port: this.entry.remotePort };
    this.remote = remote;
    let udp: UdpSocket;
    try {
      let bindTo: { address: string; port: number } | Record<string, never> = {};
      if (this.entry.bind) {
        const bound = await resolveLinkLocal(this.entry, remote.family);
        if (!bound.ok) throw new Error(bound.reason);
        bindTo = { address: bound.local.address, port: this.entry.localPort };
      }
      udp = UdpSocket.open({ family: remote.family, ...bindTo, ...socketBuffers(this.options) });
    } catch (error) {
      this.logger.log(1, `UDP socket: ${(error as Error).message}`);
      this.softSignal('SIGUSR1', 'socket-open-failed');
      return;
    }
    const proto = remote.family === 6 ? 'UDPv6' : 'UDPv4';
    const local = udp.localAddress();
    this.logger.log(1, `${proto} link local${this.entry.bind ? `: ${formatPeer(local.family, local.address, local.port)}` : ' (not bound)'}`);
    this.logger.log(1, `${proto} link remote: ${formatPeer(remote.family, remote.address, remote.port)}`);
    this.link = new ClientLink(udp, remote, this.slot, {
      onControlPacket: (wire) => this.onControlPacket(wire),
      onDataReceived: (now) => this.keepalive.received(now),
      onSent: (now) => this.keepalive.sent(now),
      onOccExit: () => {
        this.logger.log(1, 'OCC exit message received by peer');
        this.softSignal('SIGUSR1', 'remote-exit');
      },
    });
    this.startSession();
    this.connectStart = performance.now();
    this.ticker = setInterval(() => this.tick(), TICK_MS);
  }

  private startSession(): void {
    const o = this.options;
    const creds = this.proc.credentials;
    const proto = IV_PROTO_DATA_V2 | IV_PROTO_REQUEST_PUSH | IV_PROTO_TLS_KEY_EXPORT | IV_PROTO_CC_EXIT_NOTIFY;
    const occ = `V4,dev-type tun,link-mtu 1559,tun-mtu ${this.entry.tunMtu},proto ${this.remote?.family === 6 ? 'UDPv6' : 'UDPv4'},cipher ${this.dataCiphers[0] ?? 'AES-256-GCM'},auth [null-digest],keysize 256,key-method 2,tls-client`;
    this.session = new ControlSession(
      {
        role: 'client',
        tls: this.tls,
        wrap: this.wrap,
        keyMethod2: {
          options: occ,
          peerInfo: buildPeerInfo({
            version: '2.6.14',
            platform: 'linux',
            ncp: 2,
            ciphers: this.dataCiphers,
            proto,
            extra: Object.entries(o.setenv).filter(([k]) => k.startsWith('UV_') || k === 'IV_GUI_VER'),
          }),
          ...(creds !== null ? { username: creds.username, password: creds.password } : {}),
        },
        ...(o.remoteCertTls !== undefined ? { remoteCertTls: o.remoteCertTls } : {}),
        ...(o.remoteCertEku !== undefined ? { remoteCertEku: o.remoteCertEku } : {}),
        ...(o.verifyX509Name !== undefined ? { verifyX509Name: o.verifyX509Name } : {}),
        timing: { handWindowMs: o.handWindow * 1000, tlsTimeoutMs: o.tlsTimeout * 1000, renegMs: o.renegSec * 1000, tranWindowMs: o.tranWindow * 1000 },
        ipv6: this.remote?.family === 6,
      },
      {
        sendPacket: (wire) => this.sendControl(wire),
        onEvent: (event) => this.onSessionEvent(event),
        now: () => performance.now(),
      },
    );
    this.session.start();
  }

  // ------------------------------------------------------------------------------------------
  // Packets

  private sendControl(wire: Buffer): void {
    const sent = this.link?.sendControl(wire) ?? false;
    this.logger.log(7, `UDP WRITE [${wire.length}] opcode ${wire[0]! >>> P_OPCODE_SHIFT}${sent ? '' : ' (dropped)'}`);
  }

  private onControlPacket(wire: Buffer): void {
    if (this.isOver()) return;
    if (!this.firstPacket) {
      this.firstPacket = true;
      const r = this.remote!;
      this.logger.log(1, `TLS: Initial packet from ${formatPeer(r.family, r.address, r.port)}`);
    }
    this.logger.log(7, `UDP READ [${wire.length}] opcode ${wire[0]! >>> P_OPCODE_SHIFT}`);
    this.session?.receivePacket(wire);
  }

  // ------------------------------------------------------------------------------------------
  // Timers

  private tick(): void {
    if (this.isOver()) return;
    const now = performance.now();
    const session = this.session;
    if (session !== null) {
      // nextTimeout() reads the clock itself, later than `now`: allow for that.
      const due = session.nextTimeout();
      if (due !== null && due <= performance.now() + 1) session.tick();
      if (this.isOver()) return;
    }
    if (!this.firstPacket && this.entry.connectTimeout > 0 && now - this.connectStart >= this.entry.connectTimeout * 1000) {
      this.logger.log(1, 'Server poll timeout, restarting');
      this.softSignal('SIGUSR1', 'server_poll');
      return;
    }
    if (!this.pushed && this.pushRequestedAt >= 0 && now - this.pushRequestedAt >= PUSH_REQUEST_INTERVAL_MS) this.sendPushRequest();
    const tunnel = this.link?.stats;
    if (this.inactivity.expired(tunnel === undefined ? 0 : tunnel.tunReadBytes + tunnel.tunWriteBytes, now)) {
      this.logger.log(1, 'Inactivity timeout (--inactive), exiting');
      this.softSignal('SIGTERM', 'inactive');
      return;
    }
    switch (this.keepalive.poll(now)) {
      case 'ping':
        this.link?.sendDataMessage(writePingMessage);
        break;
      case 'ping-restart':
        this.logger.log(1, `[${this.serverCn || 'UNDEF'}] Inactivity timeout (--ping-restart), restarting`);
        this.softSignal('SIGUSR1', 'ping-restart');
        return;
      case 'ping-exit':
        this.logger.log(1, `[${this.serverCn || 'UNDEF'}] Inactivity timeout (--ping-exit), exiting`);
        this.softSignal('SIGTERM', 'ping-exit');
        return;
      case 'none':
        break;
    }
    const key = this.link?.currentKey ?? null;
    const renegBytes = this.options.renegBytes > 0 ? this.options.renegBytes : 0;
    if (key !== null && session !== null && session.activeKeyId === key.keyId && key.renegotiationDue(renegBytes, this.options.renegPkts)) session.renegotiate();
  }

  // ------------------------------------------------------------------------------------------
  // Control channel

  private onSessionEvent(event: SessionEvent): void {
    switch (event.type) {
      case 'tls-verified':
        this.serverCn = event.commonName;
        this.logger.log(2, `VERIFY OK: depth=0, ${event.subject.split('\n').join(', ')}`);
        this.logger.log(1, `Control Channel: ${event.protocol}, cipher ${event.protocol} ${event.cipher}`);
        break;
      case 'key-method-2':
        if (event.keyId === 0 && this.pushRequestedAt < 0) {
          this.serverOcc = event.options;
          const r = this.remote!;
          this.logger.log(1, `[${this.serverCn}] Peer Connection Initiated with ${formatPeer(r.family, r.address, r.port)}`);
          // auth-nocache: the password was sent; ask again (or re-read the file) next time.
          if (this.options.authNocache) this.proc.credentials = null;
          this.sendPushRequest();
        }
        break;
      case 'keys':
        this.keyBlocks.set(event.keyId, event.keyBlock);
        if (this.cipher !== null) this.installKey(event.keyId);
        break;
      case 'key-retired':
        this.link?.retireKey(event.keyId);
        break;
      case 'control-message':
        this.onControlMessage(event.text);
        break;
      case 'error':
        this.onSessionError(event.reason, event.detail, event.fatal);
        break;
      case 'drop':
        this.logger.log(5, `control packet dropped: ${event.reason} ${event.detail}`);
        break;
      case 'renegotiating':
        this.logger.log(3, `TLS: soft reset, key_id ${event.keyId} (${event.initiatedBy})`);
        break;
      case 'closed':
        break;
    }
  }

  private onSessionError(reason: string, detail: string, fatal: boolean): void {
    if (reason === 'cert-rejected') {
      // node reports "CODE text" (SELF_SIGNED_CERT_IN_CHAIN self-signed certificate in ...).
      const coded = /^([A-Z][A-Z0-9_]+) (.+)$/.exec(detail);
      const text = coded !== null ? `${coded[2]} (${coded[1]})` : detail;
      this.logger.log(1, text.startsWith('VERIFY ') ? text : `VERIFY ERROR: ${text}`);
    } else if (reason === 'handshake-timeout') {
      this.logger.log(1, `TLS Error: ${detail} (check your network connectivity)`);
    } else {
      this.logger.log(1, `TLS Error: ${reason}: ${detail}`);
    }
    if (!fatal) return;
    this.logger.log(1, 'TLS Error: TLS handshake failed');
    this.softSignal('SIGUSR1', 'tls-error');
  }

  private sendPushRequest(): void {
    this.session?.sendControlMessage('PUSH_REQUEST');
    this.pushRequestedAt = performance.now();
    this.logger.log(3, `SENT CONTROL [${this.serverCn}]: 'PUSH_REQUEST' (status=1)`);
  }

  private onControlMessage(text: string): void {
    const message = parseControlMessage(text);
    switch (message.kind) {
      case 'push-reply':
        this.logger.log(3, `PUSH: Received control message: '${text}'`);
        this.onPushReply(text);
        return;
      case 'auth-failed': {
        this.logger.log(1, `AUTH: Received control message: ${text}`);
        const list = this.proc.list;
        if (message.temp !== undefined) {
          if (list !== null) {
            if (message.temp.backoffS !== undefined) list.restartSleepS = message.temp.backoffS;
            if (message.temp.advance === 'remote') list.advanceNext = true;
          }
          this.softSignal('SIGUSR1', 'auth-temp-failure (server temporary reject)');
          return;
        }
        const retry = this.options.authRetry ?? 'none';
        if (retry === 'none') {
          this.softSignal('SIGTERM', 'auth-failure');
        } else {
          if (retry === 'interact' || this.options.authUserPass?.kind !== 'stdin') this.proc.credentials = null;
          this.softSignal('SIGUSR1', 'auth-failure');
        }
        return;
      }
      case 'restart':
        this.logger.log(1, `${text} received from server`);
        if (message.flags.nextRemote && this.proc.list !== null) this.proc.list.advanceNext = true;
        this.softSignal('SIGUSR1', 'server-pushed-connection-reset');
        return;
      case 'halt':
        this.logger.log(1, `${text} received from server`);
        this.softSignal('SIGTERM', 'server-pushed-halt');
        return;
      case 'info':
      case 'info-pre':
        this.logger.log(1, `${text}`);
        return;
      default:
        this.logger.log(4, `Unknown control message: '${text}'`);
    }
  }

  private onPushReply(text: string): void {
    if (this.pushed) return; // a second reply to a repeated PUSH_REQUEST
    const step = this.collector.add(text);
    if (!step.ok) {
      if (step.reason === 'rejected-by-filter') this.logger.log(1, `Pushed option rejected by filter: '${step.detail}'. Restarting.`);
      else this.logger.log(1, `OPTIONS ERROR: PUSH_REPLY ${step.reason}: ${step.detail}`);
      this.softSignal('SIGUSR1', step.reason === 'rejected-by-filter' ? 'Offending option received from server' : 'process-push-msg-failed');
      return;
    }
    if (!step.complete) return;
    this.pushed = true;
    const pushed: PushOptions = this.options.routeNopull ? applyRouteNopull(step.options) : step.options;
    const choice = checkClientCipher({
      dataCiphers: this.dataCiphers.map((c) => normalizeCipherName(c) ?? c),
      pushedCipher: pushed.cipher ?? null,
      occCipher: occStringCipher(this.serverOcc),
      fallback: this.options.dataCiphersFallback ?? null,
    });
    const cipher = choice.ok ? aeadCipherName(choice.cipher) : null;
    if (!choice.ok || cipher === null) {
      this.logger.log(1, `OPTIONS ERROR: failed to negotiate cipher with server. ${choice.ok ? `cipher '${choice.cipher}' is not supported` : choice.detail}`);
      this.logger.log(1, 'ERROR: Failed to apply push options');
      this.softSignal('SIGUSR1', 'process-push-msg-failed');
      return;
    }
    this.cipher = cipher;
    this.peerId = pushed.peerId ?? null;
    this.ccExit = (pushed.protocolFlags ?? []).includes('cc-exit');
    const o = this.options;
    if (pushed.ping !== undefined || pushed.pingRestart !== undefined) {
      this.logger.log(3, 'OPTIONS IMPORT: timers and/or timeouts modified');
    }
    const pingS = pushed.ping ?? o.ping;
    const restartS = pushed.pingRestart ?? (o.pingRecAction === 'restart' ? o.pingRecTimeout : 0);
    this.keepalive.configure({ pingS, pingRestartS: restartS, pingExitS: o.pingRecAction === 'exit' ? o.pingRecTimeout : 0 }, performance.now());
    if (this.peerId !== null) this.logger.log(3, 'OPTIONS IMPORT: peer-id set');
    this.logger.log(1, `Data Channel: cipher '${cipher}'${this.peerId !== null ? `, peer-id: ${this.peerId}` : ''}`);
    const ekm = pushed.keyDerivation === 'tls-ekm' || (pushed.protocolFlags ?? []).includes('tls-ekm');
    this.session?.setKeyDerivation(ekm ? 'tls-ekm' : 'prf');
    for (const keyId of [...this.keyBlocks.keys()]) this.installKey(keyId);
    this.state = 'pushed';
    void this.setUpTunnel(pushed);
  }

  private installKey(keyId: number): void {
    const block = this.keyBlocks.get(keyId);
    if (block === undefined || this.cipher === null) return;
    this.keyBlocks.delete(keyId);
    let key: DataChannelKey;
    try {
      key = DataChannelKey.fromKeyBlock(block, 'client', this.cipher, keyId, {
        peerId: this.peerId,
        replayWindow: this.options.replayWindow,
        replayWindowTimeS: this.options.replayTime,
      });
    } catch (error) {
      this.logger.log(1, `TLS Error: ${(error as Error).message}`);
      block.fill(0);
      return;
    }
    block.fill(0);
    if (this.link !== null) {
      this.link.maxMss = maxMss(this.entry.mssfix, this.remote?.family ?? 4, this.peerId !== null);
      this.link.installKey(key);
    } else {
      key.destroy();
    }
  }

  // ------------------------------------------------------------------------------------------
  // The tunnel device

  private async setUpTunnel(pushed: PushOptions): Promise<void> {
    const o = this.options;
    const network = clientNetwork(o, pushed);
    const remote = this.remote!;
    const noDevice = o.devType === 'null' || o.dev === 'null';
    try {
      let context: 'init' | 'restart' = 'init';
      let reused = false;
      const kept = this.proc.tun;
      if (kept !== null) {
        const applied = this.proc.applied;
        if (applied !== null && sameNetwork(applied.network, network)) {
          this.logger.log(1, `Preserving previous TUN/TAP instance: ${kept.name}`);
          this.tun = kept;
          reused = true;
          context = 'restart';
        } else {
          if (applied !== null) await undoNetwork(applied);
          kept.close();
          this.proc.applied = null;
        }
        this.proc.tun = null;
      }
      if (this.isOver()) {
        if (reused) this.proc.tun = this.tun;
        return;
      }
      if (!noDevice && !reused) {
        const name = o.dev === undefined || o.dev === 'tun' ? '' : o.dev;
        const tun = TunDevice.open({ name, mtu: network.tunMtu });
        this.tun = tun;
        this.logger.log(1, `TUN/TAP device ${tun.name} opened`);
      }
      const tun = this.tun;
      const dev = tun?.name ?? 'null';
      this.facts = {
        dev,
        network,
        remote: { host: this.entry.remote ?? '', address: remote.address, port: remote.port },
        ...(this.serverCn !== '' ? { commonName: this.serverCn } : {}),
        ...(this.proc.configFile !== undefined ? { configFile: this.proc.configFile } : {}),
      };
      if (tun !== null && !reused) {
        const onlyAddresses = { ...network, routes: [], routes6: [] } as ClientNetwork;
        delete onlyAddresses.redirectGateway;
        if (!o.ifconfigNoexec) await applyNetwork(dev, onlyAddresses, remote.address, this.logger);
        if (o.up !== undefined && !this.isOver()) {
          if (!(await runScript(o, o.up, this.facts, 'up', context, this.logger))) {
            this.proc.exitStatus = 1;
            this.logger.log(1, 'Exiting due to fatal error');
            this.softSignal('SIGTERM', 'up-script-failed');
          }
        }
        const routesOnly: ClientNetwork = { ...network };
        delete routesOnly.ifconfig;
        delete routesOnly.ifconfigIpv6;
        const applied = o.routeNoexec ? { dev, network, undo: [] } : await applyNetwork(dev, routesOnly, remote.address, this.logger);
        this.proc.applied = { ...applied, network };
        if (applied.netGateway !== undefined) this.facts.netGateway = applied.netGateway;
      }
      if (this.isOver()) {
        if (this.tun !== null && this.state !== 'stopped') this.proc.tun = this.tun;
        return;
      }
      if (tun !== null) this.link?.attachTun(tun);
      // Root is needed no more once the device, its routes and the up script are done
      // (OpenVPN's do_uid_gid_chroot at the same point); the first run drops it for good.
      try {
        dropPrivileges(this.options, this.logger);
      } catch (error) {
        this.proc.exitStatus = 1;
        this.logger.log(1, `${(error as Error).message}; Exiting due to fatal error`);
        this.softSignal('SIGTERM', 'privileges');
        return;
      }
      this.state = 'connected';
      this.proc.list?.completed();
      this.logger.log(1, 'Initialization Sequence Completed');
    } catch (error) {
      this.logger.log(1, `ERROR: cannot set up the tunnel device: ${(error as Error).message}`);
      this.softSignal('SIGUSR1', 'tun-setup-failed');
    }
  }

  // ------------------------------------------------------------------------------------------
  // Ending

  private isOver(): boolean {
    return this.state === 'ending' || this.state === 'stopped';
  }

  /** A signal this run raises itself (OpenVPN's register_signal with a soft source). */
  private softSignal(signal: ServerSignal, text: string): void {
    if (this.isOver()) return;
    this.selfEnded = true;
    this.state = 'ending';
    // The lifecycle logs it, as SIGUSR1[soft,TEXT] received.
    this.raise(signal, text);
  }

  async stop(notify: boolean): Promise<void> {
    const wasConnected = (this.link?.currentKey ?? null) !== null;
    const n = this.entry.explicitExitNotify;
    if (this.state !== 'stopped' && notify && !this.selfEnded && wasConnected && n > 0) {
      this.logger.log(1, 'SIGTERM received, sending exit notification to peer');
      if (this.ccExit) this.session?.sendControlMessage('EXIT');
      const deadline = performance.now() + n * 1000;
      for (;;) {
        if (!this.ccExit) this.link?.sendDataMessage((memory, offset) => writeOccMessage(memory, offset, { op: 'exit' }));
        const left = deadline - performance.now();
        if (left <= 0) break;
        await new Promise((resolve) => setTimeout(resolve, Math.min(1000, left)));
      }
    }
    this.state = 'stopped';
    for (const t of this.timers) clearTimeout(t);
    this.timers = [];
    if (this.ticker !== null) clearInterval(this.ticker);
    this.ticker = null;
    this.session?.close();
    this.session = null;
    for (const block of this.keyBlocks.values()) block.fill(0);
    this.keyBlocks.clear();
    this.link?.close();
    this.link = null;
    await this.closeTun();
  }

  private async closeTun(): Promise<void> {
    const signal = this.proc.lastSignal;
    const tun = this.tun ?? this.proc.tun;
    this.tun = null;
    if (tun === null) return;
    tun.stopPoll();
    if (signal === 'SIGUSR1' && this.options.persistTun) {
      this.proc.tun = tun;
      return;
    }
    this.proc.tun = null;
    const applied = this.proc.applied;
    this.proc.applied = null;
    if (applied !== null) await undoNetwork(applied);
    this.logger.log(1, `Closing TUN/TAP interface`);
    const name = tun.name;
    tun.close();
    const facts = this.facts ?? (applied !== null ? { dev: name, network: applied.network, remote: { host: this.entry.remote ?? '', address: this.remote?.address ?? '', port: this.entry.remotePort } } : null);
    if (this.options.down !== undefined && facts !== null) {
      await runScript(this.options, this.options.down, facts, 'down', 'init', this.logger, (signal ?? 'SIGTERM').toLowerCase());
    }
  }

  logStatistics(): void {
    const stats = this.link?.stats ?? { tunReadBytes: 0, tunWriteBytes: 0, linkReadBytes: 0, linkWriteBytes: 0, linkReadBytesAuth: 0, foreignDrops: 0 };
    const log = (line: string): void => this.logger.log(0, line);
    log('OpenVPN STATISTICS');
    log(`Updated,${new Date().toISOString().replace('T', ' ').slice(0, 19)}`);
    log(`TUN/TAP read bytes,${stats.tunReadBytes}`);
    log(`TUN/TAP write bytes,${stats.tunWriteBytes}`);
    log(`TCP/UDP read bytes,${stats.linkReadBytes}`);
    log(`TCP/UDP write bytes,${stats.linkWriteBytes}`);
    log(`Auth read bytes,${stats.linkReadBytesAuth}`);
    if (stats.foreignDrops > 0) log(`Packets from other addresses dropped,${stats.foreignDrops}`);
    log('END');
  }
}

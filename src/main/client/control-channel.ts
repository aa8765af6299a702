// The client's control channel (ssl.c as tls-client, push.c, the incoming control messages of
// forward.c check_incoming_control_channel): the shared ControlSession in the client role,
// PUSH_REQUEST until the PUSH_REPLY, and the data channel that reply sets up. The server's
// other messages (AUTH_FAILED, RESTART, HALT, INFO) are server-messages.ts.
import { performance } from 'node:perf_hooks';

import type { ConnectionEntry, Options } from '../../shared/config';
import type { Logger } from '../../shared/log';
import { occCipherFields, type DataCipherName } from '../../shared/protocol/data-format';
import { authDigest } from '../run-checks';
import { parseControlMessage, sanitizeControlMessage } from '../../shared/protocol/control-message';
import type { DataChannelKey } from '../../shared/protocol/data-channel';
import {
  IV_PROTO_CC_EXIT_NOTIFY,
  IV_PROTO_DATA_V2,
  IV_PROTO_REQUEST_PUSH,
  IV_PROTO_TLS_KEY_EXPORT,
  buildPeerInfo,
} from '../../shared/protocol/key-method2';
import { occStringCipher } from '../../shared/protocol/ncp';
import { occOptionsString } from '../../shared/protocol/occ';
import { P_OPCODE_SHIFT } from '../../shared/protocol/opcodes';
import { PushReplyCollector, type PushOptions } from '../../shared/protocol/push-options';
import { ControlSession, type SessionEvent } from '../../shared/session';
import type { WrapConfig } from '../../shared/session/control-wrap';
import { clientDataChannelKey, negotiatePushedDataChannel, type PushedDataChannel } from '../../shared/session/pushed-data-channel';
import type { KeyMethod2Content, TlsMaterial } from '../../shared/session/types';
import { printSockaddr } from '../link-local';
import { reactToServerMessage } from './server-messages';
import type { Credentials } from './auth-user-pass';
import type { ClientPersist, RemoteEndpoint, RunControl } from './run-context';
import type { RunTimeouts } from './timeouts';
import { applyRouteNopull } from './tun-network';
import { peerChecks } from '../../shared/session/peer-verify';

const PUSH_REQUEST_INTERVAL_MS = 5000;

/** What the control channel needs of its run. */
export interface ControlChannelContext {
  readonly options: Options;
  readonly entry: ConnectionEntry;
  readonly remote: RemoteEndpoint;
  readonly dataCiphers: readonly DataCipherName[];
  readonly tls: TlsMaterial;
  readonly wrap: WrapConfig;
  readonly persist: ClientPersist;
  readonly logger: Logger;
  readonly run: RunControl;
  /** The pushed ping / ping-restart go here. */
  readonly timeouts: RunTimeouts;
  /** Sends a control datagram; false when the link dropped it. */
  sendPacket(wire: Buffer): boolean;
  /** A data-channel key is ready for the link. */
  installKey(key: DataChannelKey, channel: PushedDataChannel): void;
  retireKey(keyId: number): void;
  /** A complete PUSH_REPLY was applied: the tunnel comes up. */
  onPushed(pushed: PushOptions): void;
}

export class ClientControlChannel {
  private readonly session: ControlSession;
  private heard = false;
  private serverCnValue = '';
  private serverOcc = '';
  private pushRequestedAt = -1;
  private readonly collector: PushReplyCollector;
  private pushed = false;
  /** The username this session's login went with (a pushed session token is kept with it). */
  private loginUsername: string | null = null;
  private channel: PushedDataChannel | null = null;
  /** Key blocks that came before the PUSH_REPLY named the cipher. */
  private readonly keyBlocks = new Map<number, Buffer>();

  constructor(private readonly ctx: ControlChannelContext) {
    this.collector = new PushReplyCollector(ctx.options.pullFilters);
    this.session = this.openSession();
  }

  /** The server's common name once TLS verified it, else ''. */
  get serverCn(): string {
    return this.serverCnValue;
  }

  /** Any control packet came from the server. */
  get heardFromServer(): boolean {
    return this.heard;
  }

  /** protocol-flags cc-exit: explicit-exit-notify goes as the EXIT control message. */
  get ccExit(): boolean {
    return this.channel?.ccExit ?? false;
  }

  start(): void {
    this.session.start();
  }

  receivePacket(wire: Buffer): void {
    if (!this.heard) {
      this.heard = true;
      const r = this.ctx.remote;
      this.ctx.logger.log(1, `TLS: Initial packet from ${printSockaddr(r.family, r.address, r.port)}`);
    }
    this.ctx.logger.log(7, `UDP READ [${wire.length}] opcode ${wire[0]! >>> P_OPCODE_SHIFT}`);
    this.session.receivePacket(wire);
  }

  /** Session retransmissions and timeouts, PUSH_REQUEST repeats. */
  tick(now: number): void {
    // nextTimeout() reads the clock itself, later than `now`: allow for that.
    const due = this.session.nextTimeout();
    if (due !== null && due <= performance.now() + 1) this.session.tick();
    if (this.ctx.run.isOver()) return;
    if (!this.pushed && this.pushRequestedAt >= 0 && now - this.pushRequestedAt >= PUSH_REQUEST_INTERVAL_MS) this.sendPushRequest();
  }

  /** reneg-bytes / reneg-pkts: a soft reset once the sending key has carried enough. */
  renegotiateIfDue(key: DataChannelKey | null): void {
    const o = this.ctx.options;
    const renegBytes = o.renegBytes > 0 ? o.renegBytes : 0;
    if (key !== null && this.session.activeKeyId === key.keyId && key.renegotiationDue(renegBytes, o.renegPkts)) this.session.renegotiate();
  }

  sendExit(): void {
    this.session.sendControlMessage('EXIT');
  }

  close(): void {
    this.session.close();
    for (const block of this.keyBlocks.values()) block.fill(0);
    this.keyBlocks.clear();
  }

  private openSession(): ControlSession {
    const { options: o, entry, remote, dataCiphers } = this.ctx;
    const creds = this.ctx.persist.credentials;
    this.loginUsername = this.ctx.persist.authToken?.username ?? creds?.username ?? null;
    const proto = IV_PROTO_DATA_V2 | IV_PROTO_REQUEST_PUSH | IV_PROTO_TLS_KEY_EXPORT | IV_PROTO_CC_EXIT_NOTIFY;
    const occ = occOptionsString({
      role: 'tls-client',
      transport: entry.proto.transport === 'tcp-client' ? 'tcp-client' : 'udp',
      tunMtu: entry.tunMtu,
      ...occCipherFields(dataCiphers[0] ?? 'AES-256-GCM', authDigest(o)),
    });
    return new ControlSession(
      {
        role: 'client',
        tls: this.ctx.tls,
        wrap: this.ctx.wrap,
        keyMethod2: keyMethod2Content(
          occ,
          buildPeerInfo({
            version: '2.6.14',
            platform: 'linux',
            ncp: 2,
            ciphers: [...dataCiphers],
            proto,
            extra: Object.entries(o.setenv).filter(([k]) => k.startsWith('UV_') || k === 'IV_GUI_VER'),
          }),
          this.ctx.persist,
          creds,
        ),
        ...peerChecks(o),
        timing: {
          handWindowMs: o.handWindow * 1000,
          tlsTimeoutMs: o.tlsTimeout * 1000,
          renegMs: o.renegSec * 1000,
          ...(o.renegSecMin !== undefined ? { renegMinMs: o.renegSecMin * 1000 } : {}),
          tranWindowMs: o.tranWindow * 1000,
        },
        ipv6: remote.family === 6,
        ...(entry.proto.transport === 'tcp-client' ? { stream: true } : {}),
      },
      {
        sendPacket: (wire) => this.sendControl(wire),
        onEvent: (event) => this.onSessionEvent(event),
        now: () => performance.now(),
      },
    );
  }

  private sendControl(wire: Buffer): void {
    const sent = this.ctx.sendPacket(wire);
    this.ctx.logger.log(7, `UDP WRITE [${wire.length}] opcode ${wire[0]! >>> P_OPCODE_SHIFT}${sent ? '' : ' (dropped)'}`);
  }

  private onSessionEvent(event: SessionEvent): void {
    const logger = this.ctx.logger;
    switch (event.type) {
      case 'tls-verified':
        this.serverCnValue = event.commonName;
        logger.log(2, `VERIFY OK: depth=0, ${event.subject.split('\n').join(', ')}`);
        logger.log(1, `Control Channel: ${event.protocol}, cipher ${event.protocol} ${event.cipher}`);
        break;
      case 'key-method-2':
        if (event.keyId === 0 && this.pushRequestedAt < 0) {
          this.serverOcc = event.options;
          const r = this.ctx.remote;
          logger.log(1, `[${this.serverCnValue}] Peer Connection Initiated with ${printSockaddr(r.family, r.address, r.port)}`);
          // auth-nocache: the password was sent; ask again (or re-read the file) next time.
          if (this.ctx.options.authNocache) this.ctx.persist.credentials = null;
          this.sendPushRequest();
        }
        break;
      case 'keys':
        this.keyBlocks.set(event.keyId, event.keyBlock);
        if (this.channel !== null) this.installKey(event.keyId, this.channel);
        break;
      case 'key-retired':
        this.ctx.retireKey(event.keyId);
        break;
      case 'control-message':
        this.onControlMessage(event.text);
        break;
      case 'error':
        this.onSessionError(event.reason, event.detail, event.fatal);
        break;
      case 'drop':
        logger.log(5, `control packet dropped: ${event.reason} ${event.detail}`);
        break;
      case 'renegotiating':
        logger.log(3, `TLS: soft reset, key_id ${event.keyId} (${event.initiatedBy})`);
        break;
      case 'closed':
        break;
    }
  }

  private onSessionError(reason: string, detail: string, fatal: boolean): void {
    const logger = this.ctx.logger;
    if (reason === 'cert-rejected') {
      // node reports "CODE text" (SELF_SIGNED_CERT_IN_CHAIN self-signed certificate in ...).
      // Our checks' reasons are OpenVPN's own lines ("VERIFY ...", "TLS Error: ..."): as they are.
      const own = detail.startsWith('VERIFY ') || detail.startsWith('TLS Error: ');
      const coded = own ? null : /^([A-Z][A-Z0-9]*_[A-Z0-9_]+) (.+)$/.exec(detail);
      const text = coded !== null ? `${coded[2]} (${coded[1]})` : detail;
      logger.log(1, own ? text : `VERIFY ERROR: ${text}`);
    } else if (reason === 'handshake-timeout') {
      logger.log(1, `TLS Error: ${detail} (check your network connectivity)`);
    } else {
      logger.log(1, `TLS Error: ${reason}: ${detail}`);
    }
    if (!fatal) return;
    logger.log(1, 'TLS Error: TLS handshake failed');
    this.ctx.run.softSignal('SIGUSR1', 'tls-error');
  }

  private sendPushRequest(): void {
    this.session.sendControlMessage('PUSH_REQUEST');
    this.pushRequestedAt = performance.now();
    this.ctx.logger.log(3, `SENT CONTROL [${this.serverCnValue}]: 'PUSH_REQUEST' (status=1)`);
  }

  private onControlMessage(text: string): void {
    const message = parseControlMessage(text);
    if (message.kind !== 'push-reply') return reactToServerMessage(message, text, this.ctx);
    this.ctx.logger.log(3, `PUSH: Received control message: '${sanitizeControlMessage(text)}'`);
    this.onPushReply(text);
  }

  private onPushReply(text: string): void {
    const { logger, run, options: o } = this.ctx;
    if (this.pushed) {
      // A renewed session token (push.c send_push_reply_auth_token), or a second reply to a
      // repeated PUSH_REQUEST, whose options were applied already.
      const renewed = new PushReplyCollector(o.pullFilters).add(text);
      const token = renewed.ok && renewed.complete ? renewed.options.authToken : undefined;
      if (token !== undefined && this.ctx.persist.authToken !== null) this.ctx.persist.authToken.token = token;
      return;
    }
    const step = this.collector.add(text);
    if (!step.ok) {
      if (step.reason === 'rejected-by-filter') logger.log(1, `Pushed option rejected by filter: '${step.detail}'. Restarting.`);
      else logger.log(1, `OPTIONS ERROR: PUSH_REPLY ${step.reason}: ${step.detail}`);
      run.softSignal('SIGUSR1', step.reason === 'rejected-by-filter' ? 'Offending option received from server' : 'process-push-msg-failed');
      return;
    }
    if (!step.complete) return;
    this.pushed = true;
    const pushed: PushOptions = o.routeNopull ? applyRouteNopull(step.options) : step.options;
    const negotiated = negotiatePushedDataChannel(pushed, {
      dataCiphers: this.ctx.dataCiphers,
      occCipher: occStringCipher(this.serverOcc),
      fallback: o.dataCiphersFallback ?? null,
      auth: authDigest(o),
    });
    if (!negotiated.ok) {
      logger.log(1, `OPTIONS ERROR: failed to negotiate cipher with server. ${negotiated.detail}`);
      logger.log(1, 'ERROR: Failed to apply push options');
      run.softSignal('SIGUSR1', 'process-push-msg-failed');
      return;
    }
    const channel = negotiated.channel;
    this.channel = channel;
    if (pushed.authToken !== undefined && this.loginUsername !== null) {
      this.ctx.persist.authToken = { username: this.loginUsername, token: pushed.authToken };
      logger.log(3, 'OPTIONS IMPORT: auth-token set');
    }
    if (pushed.ping !== undefined || pushed.pingRestart !== undefined) logger.log(3, 'OPTIONS IMPORT: timers and/or timeouts modified');
    this.ctx.timeouts.applyPush(pushed, performance.now());
    if (channel.peerId !== null) logger.log(3, 'OPTIONS IMPORT: peer-id set');
    logger.log(1, `Data Channel: cipher '${channel.cipher}'${channel.peerId !== null ? `, peer-id: ${channel.peerId}` : ''}`);
    this.session.setKeyDerivation(channel.keyDerivation);
    for (const keyId of [...this.keyBlocks.keys()]) this.installKey(keyId, channel);
    this.ctx.onPushed(pushed);
  }

  private installKey(keyId: number, channel: PushedDataChannel): void {
    const block = this.keyBlocks.get(keyId);
    if (block === undefined) return;
    this.keyBlocks.delete(keyId);
    const built = clientDataChannelKey(block, keyId, channel, {
      replayWindow: this.ctx.options.replayWindow,
      replayWindowTimeS: this.ctx.options.replayTime,
    });
    if (built.ok) this.ctx.installKey(built.key, channel);
    else this.ctx.logger.log(1, `TLS Error: ${built.detail}`);
  }
}

/**
 * What key method 2 sends. The username and password are read each time one is written: the
 * session token once the server pushed one (auth-gen-token; a renewal replaces it in `persist`),
 * so every later renegotiation and reconnect sends the newest (ssl.c key_method_2_write), else
 * auth-user-pass.
 */
function keyMethod2Content(options: string, peerInfo: string, persist: ClientPersist, creds: Credentials | null): KeyMethod2Content {
  return {
    options,
    peerInfo,
    get username(): string | null {
      return persist.authToken?.username ?? creds?.username ?? null;
    },
    get password(): string | null {
      return persist.authToken?.token ?? creds?.password ?? null;
    },
  };
}

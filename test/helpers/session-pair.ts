// Our client and server ControlSessions (StatelessResponder in front of the server) wired in
// memory on a fake clock, with seeded control-packet loss, duplication and reordering, and
// hosts that do what a real client/server host does around the session: PUSH_REQUEST,
// NCP cipher choice, PUSH_REPLY, and a DataChannelKey per 'keys' event.

import { ControlSession } from '../../src/shared/session/control-session';
import { StatelessResponder } from '../../src/shared/session/stateless-responder';
import type { ControlSessionConfig, SessionEvent, SessionTiming } from '../../src/shared/session/types';
import type { WrapConfig } from '../../src/shared/session/control-wrap';
import { generateStaticKey } from '../../src/shared/protocol/static-key';
import { buildPeerInfo } from '../../src/shared/protocol/key-method2';
import { aeadCipherName, checkClientCipher, selectServerCipher } from '../../src/shared/protocol/ncp';
import { parsePushReply } from '../../src/shared/protocol/push-options';
import { DataChannelKey, newDataChannelCounters } from '../../src/shared/protocol/data-channel';
import type { DataChannelCounters } from '../../src/shared/protocol/data-channel';
import type { AeadCipherName } from '../../src/shared/native';
import type { TestPki } from '../../lab/test-pki';

export { mulberry32, randInt, shuffle } from './prng';
import { shuffle } from './prng';

/** Faults applied to control datagrams, per direction. */
export interface LinkFaults {
  loss: number;
  duplicate: number;
  /** Shuffle each delivery round. */
  reorder: boolean;
}

export const NO_FAULTS: LinkFaults = { loss: 0, duplicate: 0, reorder: false };

/** One host's data-channel state: keys by key_id and the key it sends with. */
export interface DataSide {
  readonly role: 'client' | 'server';
  readonly keys: Map<number, DataChannelKey>;
  sendKeyId: number | null;
  /**
   * Server only: a renegotiated key it will send with once the client has shown (by an
   * authentic data packet on it) that it has the key too. See acceptedOn().
   */
  pendingSendKeyId: number | null;
  cipher: AeadCipherName | null;
  peerId: number | null;
  readonly counters: DataChannelCounters;
  /** key_ids in the order their 'key-retired' arrived. */
  readonly retired: number[];
}

function newDataSide(role: 'client' | 'server'): DataSide {
  return {
    role,
    keys: new Map(),
    sendKeyId: null,
    pendingSendKeyId: null,
    cipher: null,
    peerId: null,
    counters: newDataChannelCounters(),
    retired: [],
  };
}

/** Host bookkeeping after key `keyId` authenticated a data packet from the peer. */
export function acceptedOn(side: DataSide, keyId: number): void {
  if (side.pendingSendKeyId === keyId) {
    side.sendKeyId = keyId;
    side.pendingSendKeyId = null;
  }
}

export interface PairOptions {
  pki: TestPki;
  random: () => number;
  /** Client IV_CIPHERS, in its preference order. */
  clientCiphers: readonly string[];
  /** Server --data-ciphers, in its preference order. */
  serverCiphers: readonly string[];
  peerId?: number;
  up?: LinkFaults;
  down?: LinkFaults;
  tranWindowMs?: number;
  /** Either side's own session timers (reneg-sec and its min), over the shared ones. */
  clientTiming?: SessionTiming;
  serverTiming?: SessionTiming;
  /**
   * Server switches to a renegotiated key at its 'key-active' (the client acknowledged the key
   * method 2 reply) as well as after the client used it (default: only the latter).
   */
  serverSwitchesAtActive?: boolean;
  /** Control channel protection (default tls-crypt). */
  wrap?: 'tls-crypt' | 'tls-auth' | 'none';
  /** The client's certificate and key (default the PKI's client); false: it logs in with auth-user-pass alone. */
  clientCert?: false | { cert: string; key: string };
  /** The server's --verify-client-cert (default require). */
  verifyClientCert?: 'none' | 'optional' | 'require';
}

function wrapsFor(mode: 'tls-crypt' | 'tls-auth' | 'none'): { client: WrapConfig; server: WrapConfig } {
  const key = generateStaticKey();
  if (mode === 'tls-crypt') return { client: { mode: 'tls-crypt', key }, server: { mode: 'tls-crypt', key } };
  if (mode === 'tls-auth') {
    return {
      client: { mode: 'tls-auth', key, direction: 'inverse', digest: 'SHA256' },
      server: { mode: 'tls-auth', key, direction: 'normal', digest: 'SHA256' },
    };
  }
  return { client: { mode: 'none' }, server: { mode: 'none' } };
}

const CLIENT_OPTIONS = 'V4,dev-type tun,link-mtu 1559,tun-mtu 1500,proto UDPv4,auth [null-digest],keysize 256,key-method 2,tls-client';
const SERVER_OPTIONS = 'V4,dev-type tun,link-mtu 1559,tun-mtu 1500,proto UDPv4,auth [null-digest],keysize 256,key-method 2,tls-server';

export class SessionPair {
  now = 1_000_000;
  readonly client: ControlSession;
  server: ControlSession | null = null;
  readonly clientEvents: SessionEvent[] = [];
  readonly serverEvents: SessionEvent[] = [];
  readonly clientData: DataSide = newDataSide('client');
  readonly serverData: DataSide = newDataSide('server');
  readonly toServer: Buffer[] = [];
  readonly toClient: Buffer[] = [];
  /** Every control datagram each side sent, in order (fuzz seeds). */
  readonly sentByClient: Buffer[] = [];
  readonly sentByServer: Buffer[] = [];
  /** Control datagrams lost / duplicated on purpose. */
  lost = 0;
  duplicated = 0;
  private readonly responder: StatelessResponder;
  /** Both sides' session settings (a test may run the server side elsewhere, e.g. in a shard). */
  readonly clientConfig: ControlSessionConfig;
  readonly serverConfig: ControlSessionConfig;
  private readonly up: LinkFaults;
  private readonly down: LinkFaults;
  private readonly random: () => number;

  constructor(readonly opts: PairOptions) {
    this.random = opts.random;
    this.up = opts.up ?? NO_FAULTS;
    this.down = opts.down ?? NO_FAULTS;
    const wraps = wrapsFor(opts.wrap ?? 'tls-crypt');
    const timing = { tranWindowMs: opts.tranWindowMs ?? 60_000 };
    const pki = opts.pki;
    this.clientConfig = {
      role: 'client',
      tls:
        opts.clientCert === false
          ? { ca: pki.caCert }
          : { ca: pki.caCert, ...(opts.clientCert ?? { cert: pki.clientCert, key: pki.clientKey }) },
      wrap: wraps.client,
      remoteCertTls: 'server',
      keyMethod2: {
        options: CLIENT_OPTIONS,
        peerInfo: buildPeerInfo({ version: '2.6.14', platform: 'linux', ciphers: opts.clientCiphers, proto: 0x1de }),
        username: 'alice',
        password: 'secret',
      },
      timing: { ...timing, ...opts.clientTiming },
    };
    this.serverConfig = {
      role: 'server',
      tls: { ca: pki.caCert, cert: pki.serverCert, key: pki.serverKey },
      wrap: wraps.server,
      remoteCertTls: 'client',
      ...(opts.verifyClientCert !== undefined ? { verifyClientCert: opts.verifyClientCert } : {}),
      keyMethod2: { options: SERVER_OPTIONS, peerInfo: null },
      timing: { ...timing, ...opts.serverTiming },
    };
    this.responder = new StatelessResponder({ wrap: this.serverConfig.wrap });
    const c: ControlSession = new ControlSession(this.clientConfig, {
      sendPacket: (w) => {
        this.toServer.push(Buffer.from(w));
        this.sentByClient.push(Buffer.from(w));
      },
      onEvent: (e) => {
        this.clientEvents.push(e);
        this.clientHost(e, c);
      },
      now: () => this.now,
    });
    this.client = c;
  }

  // The client host: PUSH_REQUEST after key method 2, cipher and peer-id from PUSH_REPLY.
  private clientHost(e: SessionEvent, s: ControlSession): void {
    const d = this.clientData;
    if (e.type === 'key-method-2' && e.keyId === 0) s.sendControlMessage('PUSH_REQUEST');
    if (e.type === 'control-message' && e.text.startsWith('PUSH_REPLY')) {
      const p = parsePushReply(e.text);
      if (!p.ok) throw new Error(`client: bad PUSH_REPLY ${p.reason} ${p.detail}`);
      const c = checkClientCipher({ dataCiphers: this.opts.clientCiphers, pushedCipher: p.options.cipher ?? null });
      const name = c.ok ? aeadCipherName(c.cipher) : null;
      if (name === null) throw new Error(`client: no usable cipher in ${e.text}`);
      d.cipher = name;
      d.peerId = p.options.peerId ?? null;
      // A 2.6 server says tls-ekm either way: key-derivation, or protocol-flags with cc-exit.
      const ekm = p.options.keyDerivation === 'tls-ekm' || (p.options.protocolFlags ?? []).includes('tls-ekm');
      s.setKeyDerivation(ekm ? 'tls-ekm' : 'prf');
    }
    this.dataHost(d, e);
  }

  // The server host: NCP at key method 2, PUSH_REPLY on PUSH_REQUEST.
  private serverHost(e: SessionEvent, s: ControlSession): void {
    const d = this.serverData;
    if (e.type === 'key-method-2' && e.keyId === 0) {
      const r = selectServerCipher({ dataCiphers: this.opts.serverCiphers, peerInfo: e.peerInfo });
      const name = r.ok ? aeadCipherName(r.cipher) : null;
      if (name === null) throw new Error(`server: NCP failed: ${JSON.stringify(r)}`);
      d.cipher = name;
      d.peerId = this.opts.peerId ?? 7;
    }
    if (e.type === 'control-message' && e.text === 'PUSH_REQUEST') {
      s.sendControlMessage(`PUSH_REPLY,ifconfig 10.8.0.2 255.255.255.0,peer-id ${d.peerId},cipher ${d.cipher},key-derivation tls-ekm`);
    }
    this.dataHost(d, e);
  }

  private dataHost(d: DataSide, e: SessionEvent): void {
    if (e.type === 'keys') {
      if (d.cipher === null) throw new Error(`${d.role}: keys before a cipher was chosen`);
      const key = DataChannelKey.fromKeyBlock(e.keyBlock, d.role, d.cipher, e.keyId, { peerId: d.peerId, counters: d.counters });
      d.keys.get(e.keyId)?.destroy();
      d.keys.set(e.keyId, key);
      // The client may send at once: the server derived its keys before it sent the key
      // method 2 reply the client just read. The server waits for proof (acceptedOn).
      if (d.sendKeyId === null || d.role === 'client') d.sendKeyId = e.keyId;
      else d.pendingSendKeyId = e.keyId;
    }
    if (e.type === 'key-active' && d.role === 'server' && this.opts.serverSwitchesAtActive === true) acceptedOn(d, e.keyId);
    if (e.type === 'key-retired') {
      d.retired.push(e.keyId);
      const k = d.keys.get(e.keyId);
      if (k !== undefined && e.keyId !== d.sendKeyId) {
        k.destroy();
        d.keys.delete(e.keyId);
      }
    }
  }

  private serverReceive(w: Buffer): void {
    if (this.server === null) {
      const r = this.responder.handle(w, '127.0.0.1', 40000, this.now);
      if (r.action === 'reply') {
        this.toClient.push(Buffer.from(r.wire));
        this.sentByServer.push(Buffer.from(r.wire));
      } else if (r.action === 'create') {
        const cfg: ControlSessionConfig = r.stateless === null ? this.serverConfig : { ...this.serverConfig, stateless: r.stateless };
        const s: ControlSession = new ControlSession(cfg, {
          sendPacket: (x) => {
            this.toClient.push(Buffer.from(x));
            this.sentByServer.push(Buffer.from(x));
          },
          onEvent: (e) => {
            this.serverEvents.push(e);
            this.serverHost(e, s);
          },
          now: () => this.now,
        });
        this.server = s;
        s.start();
        s.receivePacket(w);
      }
      return;
    }
    this.server.receivePacket(w);
  }

  private faulty(batch: Buffer[], f: LinkFaults): Buffer[] {
    const out: Buffer[] = [];
    for (const w of batch) {
      if (this.random() < f.loss) {
        this.lost++;
        continue;
      }
      out.push(w);
      if (this.random() < f.duplicate) {
        this.duplicated++;
        out.push(w);
      }
    }
    return f.reorder ? shuffle(this.random, out) : out;
  }

  /** Delivers what is queued (with faults); returns whether anything was queued. */
  deliverControl(): boolean {
    if (this.toServer.length === 0 && this.toClient.length === 0) return false;
    const a = this.faulty(this.toServer.splice(0), this.up);
    const b = this.faulty(this.toClient.splice(0), this.down);
    for (const w of a) this.serverReceive(w);
    for (const w of b) this.client.receivePacket(w);
    return true;
  }

  /** Runs timers that are due at the current fake time. */
  tickDue(): void {
    const c = this.client.nextTimeout();
    if (c !== null && c <= this.now) this.client.tick();
    const s = this.server?.nextTimeout() ?? null;
    if (s !== null && s <= this.now) this.server?.tick();
  }

  /**
   * Runs the control channel until `done()`, jumping the fake clock to the next timer when
   * nothing is in flight; throws after `limitMs` of fake time.
   */
  async runUntil(done: () => boolean, limitMs = 120_000): Promise<void> {
    const end = this.now + limitMs;
    let idle = 0;
    while (!done()) {
      if (this.deliverControl()) idle = 0;
      await new Promise<void>((r) => setImmediate(r));
      if (this.toServer.length === 0 && this.toClient.length === 0 && ++idle > 5) {
        idle = 0;
        const ts = [this.client.nextTimeout(), this.server?.nextTimeout() ?? null].filter((x): x is number => x !== null);
        const next = ts.length > 0 ? Math.max(this.now + 1, Math.min(...ts)) : this.now + 1000;
        if (next > end)
          throw new Error(
            `gave up at fake t+${this.now - (end - limitMs)} ms; client ${summary(this.clientEvents)}; server ${summary(this.serverEvents)}`,
          );
        this.now = next;
        this.client.tick();
        this.server?.tick();
      }
    }
  }

  /** Handshake, push and keys for key_id 0 on both sides. */
  async establish(): Promise<void> {
    this.client.start();
    await this.runUntil(() => this.clientData.sendKeyId !== null && this.serverData.sendKeyId !== null);
  }

  close(): void {
    this.client.close();
    this.server?.close();
    for (const d of [this.clientData, this.serverData]) {
      for (const k of d.keys.values()) k.destroy();
      d.keys.clear();
    }
  }
}

export function summary(ev: readonly SessionEvent[]): string {
  return ev
    .filter((e) => e.type !== 'drop')
    .map((e) => (e.type === 'error' ? `error:${e.reason}:${e.detail}` : `${e.type}`))
    .join(',');
}

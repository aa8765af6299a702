// One key state's negotiation (ssl.c tls_process from S_START to S_GENERATED_KEYS): TLS over
// the control channel, the peer certificate checked, the key method 2 messages exchanged, the
// data keys derived (tls-ekm or the PRF), and the NUL-terminated control messages after them.

import type { TLSSocket } from 'node:tls';
import { deriveKeyBlockEkm, deriveKeyBlockPrf, tlsSocketExporter } from '../protocol/key-derivation';
import { IV_PROTO_TLS_KEY_EXPORT, decodeKeyMethod2, encodeKeyMethod2, peerInfoProto } from '../protocol/key-method2';
import { markKm2End } from './control-send';
import type { KeyState } from './key-state';
import { hasPeerCertificate, peerCertificatePolicy, peerChecks, UNDEF_COMMON_NAME, verifyPeer } from './peer-verify';
import { preparedTls, type PreparedTls } from './prepared-tls';
import type { SessionCore } from './session-core';
import { TlsChannel } from './tls-channel';

export class KeyNegotiation {
  constructor(
    private readonly core: SessionCore,
    /** Sends what became due (TLS produced ciphertext). */
    private readonly flush: () => void,
  ) {}

  /** Our reset is acked (or, stateless, counts as acked): TLS starts on this key. */
  startTls(ks: KeyState): void {
    if (ks.state !== 'pre-start') return;
    ks.state = 'start';
    const prepared = preparedTls(this.core.config.tls);
    ks.tls = new TlsChannel(
      this.core.role,
      prepared.context,
      {
        onCiphertext: (d) => {
          if (this.core.closed || ks.state === 'failed') return;
          ks.splitter.push(d);
          this.flush();
        },
        onSecure: (socket) => this.onTlsSecure(ks, socket, prepared),
        onPlaintext: (d) => {
          ks.plain = ks.plain.length === 0 ? Buffer.from(d) : Buffer.concat([ks.plain, d]);
          if (ks.verified) this.readPlaintext(ks);
        },
        onError: (e) => {
          const code = (e as NodeJS.ErrnoException).code ?? '';
          const cert = /CERT|VERIFY|ISSUER|SIGNATURE|UNABLE_TO_GET/.test(code);
          this.core.failKey(ks, cert ? 'cert-rejected' : 'tls-error', `${code} ${e.message}`.trim(), this.core.isFirstKey(ks));
        },
      },
      peerCertificatePolicy(this.core.role, this.core.config.verifyClientCert).request,
      this.core.config.tls.ca !== '',
    );
    for (const d of ks.early.splice(0)) ks.tls.feed(d);
  }

  /**
   * Emits 'key-active' once the key has data keys and (server) the peer has acknowledged our
   * whole key method 2 message, so it holds the keys too.
   */
  announceActive(ks: KeyState): void {
    const core = this.core;
    if (ks.activeAnnounced || ks.state !== 'keys' || core.closed) return;
    if (core.role === 'server' && (ks.km2EndPacketId === null || !ks.send.ackedBefore(ks.km2EndPacketId))) return;
    ks.activeAnnounced = true;
    core.emit({ type: 'key-active', keyId: ks.keyId });
    // The old key now only opens data packets still in flight: its TLS session can go.
    const lameDuck = core.lameDuck;
    if (lameDuck !== null && lameDuck !== ks) lameDuck.releaseTls();
  }

  /** One control message with its NUL as one TLS record. */
  writeMessage(ks: KeyState, text: string): void {
    ks.tls?.write(Buffer.from(text + '\0', 'utf8'));
  }

  /** Data keys of an active key, once the key derivation method is known. */
  generateKeys(ks: KeyState): void {
    const core = this.core;
    const method = core.keyDerivation;
    const socket = ks.tls?.socket;
    const peer = ks.peerKm2;
    if (method === null || socket === undefined || peer === null || core.peerSid === null) return;
    let block: Buffer;
    try {
      if (method === 'tls-ekm') {
        block = deriveKeyBlockEkm(tlsSocketExporter(socket));
      } else {
        const client = core.role === 'client' ? ks.ownKeySource : peer.keySource;
        const server = core.role === 'client' ? peer.keySource : ks.ownKeySource;
        block = deriveKeyBlockPrf({
          client,
          server,
          clientSid: core.role === 'client' ? core.sessionId : core.peerSid,
          serverSid: core.role === 'client' ? core.peerSid : core.sessionId,
        });
      }
    } catch (e) {
      core.failKey(ks, 'key-state-error', (e as Error).message, core.isFirstKey(ks));
      return;
    }
    const now = core.host.now();
    ks.state = 'keys';
    ks.established = now;
    ks.renegAfterMs = renegotiationDelay(core.role, core.renegMs, core.renegMinMs, Math.random());
    core.emit({ type: 'keys', keyId: ks.keyId, method, keyBlock: block });
    this.announceActive(ks);
  }

  private onTlsSecure(ks: KeyState, socket: TLSSocket, prepared: PreparedTls): void {
    const core = this.core;
    if (core.closed || ks.state === 'failed') return;
    const config = core.config;
    // verify-client-cert none (never asked) or optional (not shown): no certificate to verify.
    const certless = peerCertificatePolicy(core.role, config.verifyClientCert).optional && !hasPeerCertificate(socket);
    const r: ReturnType<typeof verifyPeer> = certless
      ? { ok: true, commonName: UNDEF_COMMON_NAME, subject: '', serialNumber: '' }
      : verifyPeer(socket, prepared.caCerts, {
          ...(prepared.crlDir !== undefined ? { crlDir: prepared.crlDir } : {}),
          ...(prepared.crlUnavailable !== undefined ? { crlUnavailable: prepared.crlUnavailable } : {}),
          ...peerChecks(config),
          ...(config.tls.peerFingerprints !== undefined ? { peerFingerprints: config.tls.peerFingerprints } : {}),
          ...(config.tls.ca === '' ? { noCa: true } : {}),
        });
    if (!r.ok) {
      core.failKey(ks, 'cert-rejected', r.reason, core.isFirstKey(ks));
      return;
    }
    ks.verified = true;
    const cipher = socket.getCipher();
    core.emit({
      type: 'tls-verified',
      keyId: ks.keyId,
      commonName: r.commonName,
      subject: r.subject,
      serialNumber: r.serialNumber,
      protocol: socket.getProtocol() ?? '',
      cipher: cipher.standardName ?? cipher.name,
    });
    if (core.closed || isDead(ks)) return;
    // Client speaks first (key_method_2_write at S_START), only now that the server is verified.
    if (core.role === 'client') this.writeKeyMethod2(ks);
    this.readPlaintext(ks);
  }

  private writeKeyMethod2(ks: KeyState): void {
    const role = this.core.role;
    const c = this.core.config.keyMethod2;
    const blob = encodeKeyMethod2(
      {
        keySource: ks.ownKeySource,
        options: c.options,
        username: role === 'client' ? (c.username ?? null) : null,
        password: role === 'client' ? (c.password ?? null) : null,
        peerInfo: c.peerInfo,
      },
      role === 'client',
    );
    ks.tls?.write(blob, () => {
      ks.km2Written = true;
      markKm2End(ks);
      this.announceActive(ks);
    });
  }

  private readPlaintext(ks: KeyState): void {
    const core = this.core;
    if (ks.peerKm2 === null) {
      if (ks.plain.length === 0) return;
      const r = decodeKeyMethod2(ks.plain, core.role === 'server');
      if (!r.ok) {
        if (r.reason !== 'truncated') core.failKey(ks, 'bad-key-method-2', r.reason, core.isFirstKey(ks));
        return;
      }
      ks.peerKm2 = r.message;
      ks.plain = Buffer.from(ks.plain.subarray(r.consumed));
      if (core.role === 'server') {
        this.writeKeyMethod2(ks);
        if (core.keyDerivation === null) {
          core.keyDerivation = (peerInfoProto(r.message.peerInfo) & IV_PROTO_TLS_KEY_EXPORT) !== 0 ? 'tls-ekm' : 'prf';
        }
      }
      ks.state = 'active';
      for (const t of ks.pendingMessages.splice(0)) this.writeMessage(ks, t);
      core.emit({
        type: 'key-method-2',
        keyId: ks.keyId,
        options: r.message.options,
        peerInfo: r.message.peerInfo,
        username: r.message.username,
        password: r.message.password,
        userPassTooLong: r.userPassTooLong,
      });
      if (core.closed || ks.state !== 'active') return;
      if (core.keyDerivation !== null) this.generateKeys(ks);
    }
    // NUL-terminated text messages (forward.c check_incoming_control_channel).
    for (;;) {
      const nul = ks.plain.indexOf(0);
      if (nul < 0) break;
      const text = ks.plain.toString('utf8', 0, nul).replace(/[\r\n]+$/, '');
      ks.plain = ks.plain.subarray(nul + 1);
      if (text.length > 0) core.emit({ type: 'control-message', keyId: ks.keyId, text });
      if (core.closed || isDead(ks)) return;
    }
    if (ks.plain.length === 0) ks.plain = Buffer.alloc(0);
  }
}

// After a callback the state may have changed under TypeScript's narrowing.
function isDead(ks: KeyState): boolean {
  return ks.state === 'failed';
}

/**
 * When a new key renegotiates (ms after its keys; 0: never), from `random` in [0, 1). As OpenVPN
 * 2.6 (init.c, do_init_crypto_tls_c1): with reneg-sec's min, anywhere in [min, max] for either
 * role, so a server's clients do not all renegotiate at once; without it a server takes up to a
 * tenth off max and a client uses max exactly.
 */
export function renegotiationDelay(role: 'client' | 'server', maxMs: number, minMs: number | null, random: number): number {
  if (maxMs <= 0) return 0;
  // At least a second: 0 would mean "never", and a few ms a renegotiation as soon as keys exist.
  if (minMs !== null) return Math.max(1000, Math.round(maxMs - random * Math.max(maxMs - Math.min(minMs, maxMs), 0)));
  return role === 'server' ? Math.round(maxMs * (0.9 + random * 0.1)) : maxMs;
}

// One key_state's TLS session as node:tls runs it: a TLSSocket over an in-memory Duplex. The
// session feeds it ciphertext from ReliableRecv.drain() and gets ciphertext back for the
// TlsStreamSplitter. node:tls works on the event loop, so callbacks come asynchronously.

import { constants as cryptoConstants } from 'node:crypto';
import { Duplex } from 'node:stream';
import * as tls from 'node:tls';
import { disableTlsResumption } from '../native/tls-context';
import type { TlsMaterial } from './types';

export interface TlsChannelCallbacks {
  /** TLS ciphertext to carry in control packets. */
  onCiphertext(data: Buffer): void;
  /** Handshake finished (client: node already checked the chain against the CA). */
  onSecure(socket: tls.TLSSocket): void;
  /** Decrypted application bytes. */
  onPlaintext(data: Buffer): void;
  onError(err: Error): void;
}

// The transport under the TLSSocket: writes are ciphertext going out, push() is ciphertext in.
class ControlDuplex extends Duplex {
  constructor(private readonly out: (data: Buffer) => void) {
    super();
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.out(chunk);
    cb();
  }
  override _read(): void {
    // Data is pushed by feed().
  }
}

/**
 * A TLS context mirroring OpenVPN 2.6: TLS >= 1.2, no session tickets or cache (OpenVPN never
 * resumes), no TLS renegotiation.
 */
export function createControlSecureContext(m: TlsMaterial): tls.SecureContext {
  const context = tls.createSecureContext({
    // An empty list, not '': without `ca` node:tls would trust its built-in public roots.
    ca: m.ca === '' ? [] : m.ca,
    ...(m.cert !== undefined ? { cert: m.cert } : {}),
    ...(m.key !== undefined ? { key: m.key } : {}),
    ...(m.crl !== undefined ? { crl: m.crl } : {}),
    ...(m.ciphers !== undefined ? { ciphers: m.ciphers } : {}),
    ...(m.ciphersuites !== undefined ? { ciphersuites: m.ciphersuites } : {}),
    ...(m.groups !== undefined ? { ecdhCurve: m.groups } : {}),
    minVersion: m.minVersion ?? 'TLSv1.2',
    ...(m.maxVersion !== undefined ? { maxVersion: m.maxVersion } : {}),
    ...(m.dh !== undefined ? { dhparam: m.dh } : {}),
    secureOptions: cryptoConstants.SSL_OP_NO_TICKET | cryptoConstants.SSL_OP_NO_RENEGOTIATION,
  });
  // SSL_OP_NO_TICKET alone still sends two (stateful) TLS 1.3 tickets after each handshake.
  disableTlsResumption(context);
  return context;
}

export class TlsChannel {
  private readonly duplex: ControlDuplex;
  readonly socket: tls.TLSSocket;
  private destroyed = false;

  /**
   * `requestCert`: a server asks the client for its certificate (not with verify-client-cert
   * none). `checkChain`: a client's node:tls refuses a server whose chain does not verify; false
   * without a CA (peer-fingerprint alone), where verifyPeer() decides.
   */
  constructor(role: 'client' | 'server', context: tls.SecureContext, cb: TlsChannelCallbacks, requestCert = true, checkChain = true) {
    this.duplex = new ControlDuplex((d) => {
      if (!this.destroyed) cb.onCiphertext(d);
    });
    if (role === 'server') {
      // rejectUnauthorized would not be enforced on a bare socket anyway; verifyPeer() decides.
      this.socket = new tls.TLSSocket(this.duplex, {
        isServer: true,
        secureContext: context,
        requestCert,
        rejectUnauthorized: false,
      });
      this.socket.once('secure', () => {
        if (!this.destroyed) cb.onSecure(this.socket);
      });
    } else {
      this.socket = tls.connect({
        socket: this.duplex,
        secureContext: context,
        rejectUnauthorized: checkChain,
        // OpenVPN checks names only with verify-x509-name.
        checkServerIdentity: () => undefined,
      });
      this.socket.once('secureConnect', () => {
        if (!this.destroyed) cb.onSecure(this.socket);
      });
    }
    this.socket.on('data', (d: Buffer) => {
      if (!this.destroyed) cb.onPlaintext(d);
    });
    this.socket.on('error', (e: Error) => {
      if (!this.destroyed) cb.onError(e);
    });
    this.duplex.on('error', () => undefined);
  }

  /** Ciphertext from the peer, in message-id order. */
  feed(data: Buffer): void {
    if (!this.destroyed) this.duplex.push(data);
  }

  /**
   * One TLS record per call (key method 2 blob, one control message). `written` runs once its
   * ciphertext has been handed to onCiphertext.
   */
  write(data: Buffer, written?: () => void): void {
    if (this.destroyed) return;
    if (written === undefined) this.socket.write(data);
    else
      this.socket.write(data, () => {
        if (!this.destroyed) written();
      });
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.socket.destroy();
    this.duplex.destroy();
  }
}

// One key_state's TLS session as node:tls runs it: a TLSSocket over an in-memory transport. The
// session feeds it ciphertext from ReliableRecv.drain() and gets ciphertext back for the
// TlsStreamSplitter. node:tls works on the event loop, so callbacks come asynchronously.
//
// node wraps a transport without a native handle in a JSStreamSocket, which drives it as a
// stream: pause/resume, 'data' in, cork/write/uncork out, end, destroy. A full Duplex made every
// record in cross Readable.push, flowing mode, 'data' and JSStreamSocket's reader, and every
// record out cross Writable's buffering, each as its own control message (bench/tls-channel.bench.ts).
// Here ciphertext in goes straight to the TLS handle (TLSWrap receive(), what node itself uses
// for bytes a socket had buffered), and the records of one TLS write come out together.

import { constants as cryptoConstants } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import * as tls from 'node:tls';
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

/**
 * The transport under the TLSSocket: the part of a stream JSStreamSocket uses. Writes are
 * ciphertext going out; a corked run of writes (one TLS flight) is handed on as one buffer.
 * Ciphertext in does not pass through here (TlsChannel.feed).
 */
class ControlTransport extends EventEmitter {
  readonly readable = true;
  readonly writable = true;
  readonly readableObjectMode = false;
  readonly allowHalfOpen = false;
  private corks = 0;
  private readonly corked: Buffer[] = [];
  private readonly written: ((err?: Error | null) => void)[] = [];

  constructor(private readonly out: (data: Buffer) => void) {
    super();
  }
  pause(): this {
    return this;
  }
  resume(): this {
    return this;
  }
  cork(): void {
    this.corks++;
  }
  uncork(): void {
    if (this.corks === 0 || --this.corks > 0) return;
    const chunks = this.corked.splice(0);
    const done = this.written.splice(0);
    if (chunks.length > 0) this.out(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    for (const cb of done) cb();
  }
  write(chunk: Buffer, cb?: (err?: Error | null) => void): boolean {
    if (this.corks > 0) {
      this.corked.push(chunk);
      if (cb !== undefined) this.written.push(cb);
      return true;
    }
    this.out(chunk);
    cb?.();
    return true;
  }
  /** TLS shutdown: nothing below to close. */
  end(cb?: () => void): this {
    cb?.();
    return this;
  }
  destroy(): this {
    this.corked.length = 0;
    this.written.length = 0;
    return this;
  }
}

/** TLSWrap's receive(): ciphertext into OpenSSL without a trip through a stream. */
interface ReceivingHandle {
  receive(data: Uint8Array): void;
}

/** A TLS context mirroring OpenVPN 2.6: TLS >= 1.2, no tickets, no TLS renegotiation. */
export function createControlSecureContext(m: TlsMaterial): tls.SecureContext {
  return tls.createSecureContext({
    ca: m.ca,
    cert: m.cert,
    key: m.key,
    ...(m.crl !== undefined ? { crl: m.crl } : {}),
    ...(m.ciphers !== undefined ? { ciphers: m.ciphers } : {}),
    ...(m.ciphersuites !== undefined ? { ciphersuites: m.ciphersuites } : {}),
    ...(m.groups !== undefined ? { ecdhCurve: m.groups } : {}),
    minVersion: m.minVersion ?? 'TLSv1.2',
    secureOptions: cryptoConstants.SSL_OP_NO_TICKET | cryptoConstants.SSL_OP_NO_RENEGOTIATION,
  });
}

export class TlsChannel {
  private readonly transport: ControlTransport;
  readonly socket: tls.TLSSocket;
  private destroyed = false;

  constructor(role: 'client' | 'server', context: tls.SecureContext, cb: TlsChannelCallbacks) {
    this.transport = new ControlTransport((d) => {
      if (!this.destroyed) cb.onCiphertext(d);
    });
    // node:tls takes any object with a stream's methods and wraps it in a JSStreamSocket.
    const duplex = this.transport as unknown as Duplex;
    if (role === 'server') {
      // rejectUnauthorized would not be enforced on a bare socket anyway; verifyPeer() decides.
      this.socket = new tls.TLSSocket(duplex, {
        isServer: true,
        secureContext: context,
        requestCert: true,
        rejectUnauthorized: false,
      });
      this.socket.once('secure', () => {
        if (!this.destroyed) cb.onSecure(this.socket);
      });
    } else {
      this.socket = tls.connect({
        socket: duplex,
        secureContext: context,
        rejectUnauthorized: true,
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
  }

  /** Ciphertext from the peer, in message-id order. */
  feed(data: Buffer): void {
    if (this.destroyed) return;
    // Null once the socket is destroyed (a TLS error tears it down before the session does).
    const handle = (this.socket as unknown as { _handle: ReceivingHandle | null })._handle;
    handle?.receive(data);
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
    this.transport.destroy();
  }
}

// The tls-auth / tls-crypt / tls-crypt-v2 wrapping of one tls_session's control packets, with
// its replay state (one long-form send counter and one receive window per tls_session, kept
// across soft resets; wire doc 1.4, 2.4). Input/output of wrap/unwrap: the unwrapped layout
// opcode || sid || body (packet.ts).

import { P_CONTROL_HARD_RESET_CLIENT_V3, P_CONTROL_WKC_V1, opcodeOf } from '../protocol/opcodes';
import { PacketIdRec, PacketIdSend, EARLY_NEG_START } from '../protocol/packet-id';
import { type KeyDirection } from '../protocol/static-key';
import { tlsAuthKeys, tlsAuthUnwrap, tlsAuthWrap, type TlsAuthKeys } from '../protocol/tls-auth';
import {
  tlsCryptKeys,
  tlsCryptUnwrap,
  tlsCryptV2ExtractClientKey,
  tlsCryptV2StripWkc,
  tlsCryptWrap,
  type TlsCryptKeys,
} from '../protocol/tls-crypt';
import type { ControlWrapMode } from '../protocol/fragment-tls';

export type WrapConfig =
  | { readonly mode: 'none' }
  /** key: the 256-byte static key2; digest: --auth (default SHA1). */
  | { readonly mode: 'tls-auth'; readonly key: Buffer; readonly direction: KeyDirection; readonly digest?: string }
  | { readonly mode: 'tls-crypt'; readonly key: Buffer }
  /** Client: Kc (256 bytes) and the WKc it appends to HARD_RESET_CLIENT_V3 / CONTROL_WKC_V1. */
  | { readonly mode: 'tls-crypt-v2-client'; readonly key: Buffer; readonly wkc: Buffer }
  /** Server: the 128-byte tls-crypt-v2 server key; each client's Kc comes from its WKc. */
  | { readonly mode: 'tls-crypt-v2-server'; readonly serverKey: Buffer };

export type UnwrapResult =
  | { readonly ok: true; readonly packet: Buffer; readonly replayId: number }
  | { readonly ok: false; readonly reason: 'bad-hmac' | 'replay' | 'truncated' | 'bad-wkc' | 'no-client-key' };

export interface ControlWrapOptions {
  /** Last replay id already used (stateless server: 1, so the next is 2). */
  sendStart?: number;
  /** tls-crypt-v2 server: Kc already taken from the client's WKc (stateless path). */
  clientKey?: Buffer;
}

/** The unwrapped layout's wrap for one tls_session. */
export class ControlWrap {
  private readonly send: PacketIdSend;
  private readonly recv = new PacketIdRec();
  private auth: TlsAuthKeys | null = null;
  private crypt: TlsCryptKeys | null = null;

  constructor(
    private readonly config: WrapConfig,
    role: 'client' | 'server',
    opts: ControlWrapOptions = {},
  ) {
    // A tls-crypt-v2 client starts at EARLY_NEG_START: its reset carries 0x0f000001 (early negotiation).
    const start = opts.sendStart ?? (config.mode === 'tls-crypt-v2-client' ? EARLY_NEG_START : 0);
    this.send = new PacketIdSend(true, start);
    switch (config.mode) {
      case 'none':
        break;
      case 'tls-auth':
        this.auth = tlsAuthKeys(config.key, config.direction, config.digest ?? 'SHA1');
        break;
      case 'tls-crypt':
      case 'tls-crypt-v2-client':
        this.crypt = tlsCryptKeys(config.key, role);
        break;
      case 'tls-crypt-v2-server':
        if (opts.clientKey !== undefined) this.crypt = tlsCryptKeys(opts.clientKey, 'server');
        break;
    }
  }

  /** Frame parameters for maxControlPayload. */
  frameMode(): ControlWrapMode {
    if (this.config.mode === 'none') return { mode: 'none' };
    if (this.config.mode === 'tls-auth') return { mode: 'tls-auth', hmacSize: this.auth!.hmacSize };
    return { mode: 'tls-crypt' };
  }

  /** Bytes of the WKc the first packet carries (tls-crypt-v2 client), else 0. */
  get wkcLength(): number {
    return this.config.mode === 'tls-crypt-v2-client' ? this.config.wkc.length : 0;
  }

  /** Wraps opcode || sid || body; null when the replay counter is exhausted. */
  wrap(plain: Buffer, now: number): Buffer | null {
    if (this.config.mode === 'none') return plain;
    if (this.auth !== null) return tlsAuthWrap(this.auth, this.send, plain, now);
    if (this.crypt === null) return null; // tls-crypt-v2 server before it has the client's key
    const wkc = this.config.mode === 'tls-crypt-v2-client' ? this.config.wkc : undefined;
    return tlsCryptWrap(this.crypt, this.send, plain, now, wkc);
  }

  /** Verifies and strips the wrapping; the replay window is updated unless `checkReplay` is false. */
  unwrap(wire: Buffer, now: number, checkReplay = true): UnwrapResult {
    const replay = checkReplay ? this.recv : null;
    switch (this.config.mode) {
      case 'none':
        return { ok: true, packet: wire, replayId: 0 };
      case 'tls-auth':
        return mapResult(tlsAuthUnwrap(this.auth!, replay, wire, now));
      case 'tls-crypt':
      case 'tls-crypt-v2-client':
        return mapResult(tlsCryptUnwrap(this.crypt!, replay, wire, now));
      case 'tls-crypt-v2-server': {
        let inner = wire;
        const op = wire.length > 0 ? opcodeOf(wire[0]!) : 0;
        if (op === P_CONTROL_HARD_RESET_CLIENT_V3 || op === P_CONTROL_WKC_V1) {
          if (this.crypt === null) {
            const x = tlsCryptV2ExtractClientKey(this.config.serverKey, wire);
            if (!x.ok) return { ok: false, reason: 'bad-wkc' };
            this.crypt = tlsCryptKeys(x.key2, 'server');
            inner = x.wrapped;
          } else {
            const s = tlsCryptV2StripWkc(wire);
            if (s === null) return { ok: false, reason: 'bad-wkc' };
            inner = s;
          }
        }
        if (this.crypt === null) return { ok: false, reason: 'no-client-key' };
        return mapResult(tlsCryptUnwrap(this.crypt, replay, inner, now));
      }
    }
  }
}

function mapResult(
  r:
    | { readonly ok: true; readonly packet: Buffer; readonly packetId: number }
    | { readonly ok: false; readonly reason: 'truncated' | 'bad-hmac' | 'replay' },
): UnwrapResult {
  return r.ok ? { ok: true, packet: r.packet, replayId: r.packetId } : r;
}

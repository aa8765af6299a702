// Carrying the TLS byte stream over control packets (wire doc 1.5; ssl.c
// write_outgoing_tls_ciphertext, calc_control_channel_frame_overhead).
//
// TLS output is a byte stream, not records: it is cut into pieces of at most the control
// payload size, one P_CONTROL_V1 per piece, and the receiver feeds payloads to TLS in message
// packet-id order (ReliableRecv.drain() already yields that order, so reassembly is plain
// concatenation: write each drained payload to the TLS socket as it comes).

import { SID_SIZE } from './opcodes';
import { CONTROL_SEND_ACK_MAX, ackSize } from './packet';

/** --max-packet-size default and bounds (mtu.h, common.h). */
export const TLS_MTU_DEFAULT = 1250;
export const TLS_CHANNEL_MTU_MIN = 154;
export const TLS_CHANNEL_BUF_SIZE = 2048;
/** tls-crypt as OpenVPN budgets it: replay id 8 + tag 32 + one cipher block 16 (tls_crypt_buf_overhead). */
const TLS_CRYPT_BUF_OVERHEAD = 8 + 32 + 16;
/** Smallest piece OpenVPN will send even when the numbers leave no room. */
const MIN_PIECE = 16;

export type ControlWrapMode =
  | { mode: 'none' }
  /** hmacSize: digest size of --auth (SHA1 20, SHA256 32, SHA512 64). */
  | { mode: 'tls-auth'; hmacSize: number }
  | { mode: 'tls-crypt' };

export interface ControlFrameParams {
  wrap: ControlWrapMode;
  /** --max-packet-size / tls-mtu; TLS_MTU_DEFAULT when absent. */
  tlsMtu?: number;
  /** Peer address family; the IP+UDP header (28 or 48) counts, over TCP too. */
  ipv6?: boolean;
  /** ACKs that may ride on the packet (pending + recently sent); capped at CONTROL_SEND_ACK_MAX. */
  acks?: number;
}

/** Bytes of a control datagram (with IP/UDP header) that are not TLS payload. */
export function controlFrameOverhead(p: ControlFrameParams): number {
  const acks = Math.min(p.acks ?? CONTROL_SEND_ACK_MAX, CONTROL_SEND_ACK_MAX);
  let overhead = 1 + SID_SIZE + ackSize(acks) + 4;
  if (p.wrap.mode === 'tls-crypt') overhead += TLS_CRYPT_BUF_OVERHEAD;
  else if (p.wrap.mode === 'tls-auth') overhead += p.wrap.hmacSize + 8;
  overhead += p.ipv6 ? 48 : 28;
  return overhead;
}

/**
 * Largest TLS payload per control packet: min(2048, tls-mtu) minus the overhead. With the
 * defaults, tls-crypt, IPv4 and 4 ACKs: 1250 − 122 = 1128.
 */
export function maxControlPayload(p: ControlFrameParams): number {
  let mtu = p.tlsMtu ?? TLS_MTU_DEFAULT;
  mtu = Math.max(TLS_CHANNEL_MTU_MIN, Math.min(TLS_CHANNEL_BUF_SIZE, mtu));
  return Math.max(MIN_PIECE, mtu - controlFrameOverhead(p));
}

/**
 * Collects TLS ciphertext as node:tls produces it and hands it out in pieces for control
 * packets. Pieces join separate writes, so a piece is as full as the stream allows.
 */
export class TlsStreamSplitter {
  private readonly chunks: Buffer[] = [];
  private length = 0;

  /** TLS ciphertext to send (copied: the caller may reuse its buffer). */
  push(data: Uint8Array): void {
    if (data.length === 0) return;
    this.chunks.push(Buffer.from(data));
    this.length += data.length;
  }

  /** Bytes waiting to be cut into pieces. */
  get pending(): number {
    return this.length;
  }

  /** The next piece of at most maxLen bytes, or null when nothing is waiting. */
  take(maxLen: number): Buffer | null {
    if (this.length === 0) return null;
    if (!(maxLen >= 1)) throw new RangeError(`piece size must be at least 1, got ${maxLen}`);
    const first = this.chunks[0]!;
    if (first.length <= maxLen && (this.chunks.length === 1 || first.length === maxLen)) {
      this.chunks.shift();
      this.length -= first.length;
      return first;
    }
    const n = Math.min(maxLen, this.length);
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const c = this.chunks[0]!;
      const k = Math.min(c.length, n - off);
      c.copy(out, off, 0, k);
      off += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.length -= n;
    return out;
  }

  /** Drops everything (the key_state is gone). */
  clear(): void {
    this.chunks.length = 0;
    this.length = 0;
  }
}

/** Cuts one buffer into pieces of at most maxLen (views, no copy); the first may be shorter (WKc). */
export function splitTlsStream(data: Buffer, maxLen: number, firstMaxLen: number = maxLen): Buffer[] {
  if (!(maxLen >= 1) || !(firstMaxLen >= 1)) throw new RangeError('piece size must be at least 1');
  const out: Buffer[] = [];
  let off = 0;
  let limit = firstMaxLen;
  while (off < data.length) {
    const n = Math.min(limit, data.length - off);
    out.push(data.subarray(off, off + n));
    off += n;
    limit = maxLen;
  }
  return out;
}

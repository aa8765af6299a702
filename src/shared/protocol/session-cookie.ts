// The 2.6 stateless UDP handshake cookie (ssl_pkt.c calculate_session_id_hmac,
// check_session_hmac_and_pkt_id; wire doc section 3). A server answers a client's first
// reset without creating state: its own session id is
//   first 8 bytes of HMAC-SHA256(key, slot || client address || client port || client sid),
// slot = floor(now / ((hand_window + 1) / 2)) + offset. Only the server recomputes it, so the
// byte encoding is ours; OpenVPN's time-slot rule and offsets (-2, -1, 0) are kept.

import { constantTimeEqual, secureRandom, SHORT_MAC_BYTES, SHORT_MAC_KEY_BYTES, shortMac } from './key-memory';

const SID_SIZE = SHORT_MAC_BYTES; // a session id is 8 bytes, as is SipHash's output
const MAX_ACKS = 8; // RELIABLE_ACK_SIZE
export const DEFAULT_HAND_WINDOW = 60;

export class SessionIdHmac {
  private readonly key: Buffer;
  private readonly slotSeconds: number;
  private readonly input: Buffer;

  /**
   * `key`: 16 bytes or more (the first 16 are used); random (never persisted) unless given, e.g. shared by all shards of one
   * server so any shard can verify a cookie. `handWindow` is `--hand-window` seconds.
   */
  constructor(key?: Buffer, handWindow = DEFAULT_HAND_WINDOW) {
    // The servers' shared cookie key is 32 random bytes; SipHash takes the first 16.
    if (key !== undefined && key.length < SHORT_MAC_KEY_BYTES)
      throw new Error(`session id key must be at least ${SHORT_MAC_KEY_BYTES} bytes`);
    this.key = key !== undefined ? key.subarray(0, SHORT_MAC_KEY_BYTES) : secureRandom(SHORT_MAC_KEY_BYTES);
    this.slotSeconds = Math.max(1, Math.floor((handWindow + 1) / 2));
    // slot(4) || family(1) || port(2) || address length(1) || address text (<= 64) || sid(8)
    this.input = Buffer.alloc(8 + 64 + SID_SIZE);
  }

  /** The server session id for this client at `now` (injected clock, ms), slot `offset`. */
  calculate(address: string, port: number, clientSid: Buffer, now: number, offset = 0): Buffer {
    const inp = this.input;
    const slot = Math.floor(Math.floor(now / 1000) / this.slotSeconds) + offset;
    inp.writeUInt32BE(slot >>> 0, 0);
    inp[4] = address.includes(':') ? 6 : 4;
    inp.writeUInt16BE(port & 0xffff, 5);
    // Address as text with its length: node always hands out the canonical form.
    const n = inp.write(address, 8, 64, 'latin1');
    inp[7] = n;
    clientSid.copy(inp, 8 + n, 0, SID_SIZE);
    const sid = Buffer.allocUnsafe(SID_SIZE);
    shortMac(sid, inp.subarray(0, 8 + n + SID_SIZE), this.key);
    return sid;
  }

  /** True if `serverSid` is the cookie for this client in the current or one of the two previous slots. */
  verify(serverSid: Buffer, address: string, port: number, clientSid: Buffer, now: number): boolean {
    if (serverSid.length !== SID_SIZE) return false;
    let ok = false;
    for (let offset = -2; offset <= 0; offset++) {
      // Evaluate every slot: no early exit on a match.
      if (constantTimeEqual(this.calculate(address, port, clientSid, now, offset), serverSid)) ok = true;
    }
    return ok;
  }
}

export type CookieEchoResult =
  | { readonly ok: true; readonly serverSid: Buffer; readonly clientSid: Buffer }
  | { readonly ok: false; readonly reason: 'truncated' | 'no-ack' | 'bad-ack' | 'bad-message-id' | 'bad-cookie' };

/**
 * Checks the client's third packet (P_CONTROL_V1, P_ACK_V1 or P_CONTROL_WKC_V1 from an unknown
 * address), given in the unwrapped layout opcode || sid || ack block || [message id] || ...:
 * it must ACK only ids <= 1, carry a message id <= 1 (not for P_ACK_V1), and echo a valid
 * cookie as the peer session id of its ACK block.
 */
export function checkCookieEcho(
  hmac: SessionIdHmac,
  plain: Buffer,
  isAck: boolean,
  address: string,
  port: number,
  now: number,
): CookieEchoResult {
  let off = 1 + SID_SIZE;
  if (plain.length < off + 1) return { ok: false, reason: 'truncated' };
  const clientSid = plain.subarray(1, 1 + SID_SIZE);
  const n = plain[off++]!;
  if (n === 0) return { ok: false, reason: 'no-ack' };
  if (n > MAX_ACKS) return { ok: false, reason: 'bad-ack' };
  if (plain.length < off + 4 * n + SID_SIZE) return { ok: false, reason: 'truncated' };
  for (let i = 0; i < n; i++, off += 4) {
    if (plain.readUInt32BE(off) > 1) return { ok: false, reason: 'bad-ack' };
  }
  const serverSid = plain.subarray(off, off + SID_SIZE);
  off += SID_SIZE;
  if (!isAck) {
    if (plain.length < off + 4) return { ok: false, reason: 'truncated' };
    if (plain.readUInt32BE(off) > 1) return { ok: false, reason: 'bad-message-id' };
  }
  if (!hmac.verify(serverSid, address, port, clientSid, now)) return { ok: false, reason: 'bad-cookie' };
  return { ok: true, serverSid: Buffer.from(serverSid), clientSid: Buffer.from(clientSid) };
}

// tls-auth: HMAC-only wrapping of control packets (ssl_pkt.c tls_wrap_control/swap_hmac,
// crypto.c openvpn_encrypt_v1 with no cipher). Wire layout (wire doc 1.4.2):
//
//   off 0     opcode|key_id (1)
//   off 1     own session id (8)
//   off 9     HMAC (H = digest size of --auth)
//   off 9+H   replay packet-id (4) || timestamp (4)
//   off 17+H  ack block, message packet-id, payload (clear)
//
// The HMAC covers pid || time || opcode || sid || rest, in that order.
// Input and output of wrap/unwrap is the unwrapped layout: opcode || sid || rest.

import { TlsAuthHmac } from '../native/crypto';
import { cachedFor } from '../weak-cache';
import { type KeyDirection, selectKeys } from './static-key';

/**
 * Where wrap takes its 8-byte replay id from: one long-form sender per tls_session, a fresh id
 * for every transmission (packet-id.ts PacketIdSend with longForm = true fits). null when the
 * counter is exhausted.
 */
export interface ReplayIdSource {
  next(now: number): { readonly id: number; readonly time: number } | null;
}

/**
 * The peer's replay window, tested and updated only for authentic packets
 * (packet-id.ts PacketIdRec fits: crypto_check_replay).
 */
export interface ReplayCheck {
  check(id: number, time: number, now: number): boolean;
}

const OPCODE_SID = 9; // opcode (1) + session id (8)
const PID_SIZE = 8; // long form: id (4) + time (4)

interface DigestInfo {
  readonly node: string;
  readonly size: number;
}

// `--auth` digests OpenVPN users put in front of tls-auth. Names as OpenVPN spells them.
const DIGESTS: ReadonlyMap<string, DigestInfo> = new Map([
  ['MD5', { node: 'md5', size: 16 }],
  ['SHA1', { node: 'sha1', size: 20 }],
  ['SHA224', { node: 'sha224', size: 28 }],
  ['SHA256', { node: 'sha256', size: 32 }],
  ['SHA384', { node: 'sha384', size: 48 }],
  ['SHA512', { node: 'sha512', size: 64 }],
]);

export interface TlsAuthKeys {
  /** Node digest name. */
  readonly digest: string;
  /** HMAC size H on the wire. */
  readonly hmacSize: number;
  /** Views into the caller's key2 (keep that in guarded memory). */
  readonly encryptKey: Buffer;
  readonly decryptKey: Buffer;
}

/**
 * Keys for tls-auth from a static key file, its key-direction and the `--auth` digest
 * (2.6 default SHA1). HMAC keys are the first H bytes of the selected hmac halves.
 * Throws on an unknown digest (configuration time). The same object for the same `key2`,
 * direction and digest, so every session of a server's tls-auth key shares its keyed contexts.
 */
export function tlsAuthKeys(key2: Buffer, direction: KeyDirection, auth = 'SHA1'): TlsAuthKeys {
  const name = auth.toUpperCase().replace(/-/g, '');
  const d = DIGESTS.get(name);
  if (d === undefined) {
    throw new Error(`tls-auth: unsupported --auth digest '${auth}' (use SHA1, SHA256 or SHA512)`);
  }
  const byKey = cachedFor(keysByKey2, key2, () => new Map<string, TlsAuthKeys>());
  const id = `${direction} ${name}`;
  let keys = byKey.get(id);
  if (keys === undefined) {
    const k = selectKeys(key2, direction, 0, d.size);
    keys = { digest: d.node, hmacSize: d.size, encryptKey: k.encryptHmac, decryptKey: k.decryptHmac };
    byKey.set(id, keys);
  }
  return keys;
}

const keysByKey2 = new WeakMap<Buffer, Map<string, TlsAuthKeys>>();

/** The keyed OpenSSL HMAC contexts of both directions, made on a key's first packet. */
interface TlsAuthContexts {
  readonly sign: TlsAuthHmac;
  readonly verify: TlsAuthHmac;
}
const contextsByKeys = new WeakMap<TlsAuthKeys, TlsAuthContexts>();

function contextsOf(keys: TlsAuthKeys): TlsAuthContexts {
  return cachedFor(contextsByKeys, keys, () => ({
    sign: new TlsAuthHmac(keys.digest, keys.encryptKey),
    verify: new TlsAuthHmac(keys.digest, keys.decryptKey),
  }));
}

/**
 * The receive direction's HMAC check of `keys`, for packets read in place (the first-packet
 * check of a shard's receive batch): the same keyed context the sessions of this key use.
 */
export function tlsAuthVerifier(keys: TlsAuthKeys): TlsAuthHmac {
  return contextsOf(keys).verify;
}

/** Bytes tls-auth adds to an unwrapped control packet. */
export function tlsAuthOverhead(keys: TlsAuthKeys): number {
  return keys.hmacSize + PID_SIZE;
}

/**
 * Wraps an unwrapped control packet (opcode || sid || rest). Takes the next replay id from
 * `send` (a fresh one for every transmission, retransmits included); `now` is the injected
 * clock, passed to `send`. Returns null only when the replay counter is exhausted (the
 * session must be restarted).
 */
export function tlsAuthWrap(keys: TlsAuthKeys, send: ReplayIdSource, plain: Buffer, now: number): Buffer | null {
  if (plain.length < OPCODE_SID) throw new RangeError('tls-auth wrap: packet shorter than opcode + session id');
  const pid = send.next(now);
  if (pid === null) return null;
  const h = keys.hmacSize;
  const out = Buffer.allocUnsafe(plain.length + h + PID_SIZE);
  plain.copy(out, 0, 0, OPCODE_SID);
  out.writeUInt32BE(pid.id >>> 0, OPCODE_SID + h);
  out.writeUInt32BE(pid.time >>> 0, OPCODE_SID + h + 4);
  plain.copy(out, OPCODE_SID + h + PID_SIZE, OPCODE_SID);
  contextsOf(keys).sign.sign(out);
  return out;
}

export type TlsWrapRejection = 'truncated' | 'bad-hmac' | 'replay';

export type TlsUnwrapResult =
  | {
      readonly ok: true;
      /** Unwrapped layout: opcode || sid || rest (a new buffer). */
      readonly packet: Buffer;
      readonly packetId: number;
      readonly time: number;
    }
  | { readonly ok: false; readonly reason: TlsWrapRejection };

/**
 * Verifies and strips tls-auth. `replay` null skips the replay check, as OpenVPN does for
 * the stateless first-packet test (CO_IGNORE_PACKET_ID); otherwise an authentic packet is
 * checked against and recorded in the window (`now` is passed to it). Never throws on packet
 * contents.
 */
export function tlsAuthUnwrap(keys: TlsAuthKeys, replay: ReplayCheck | null, wire: Buffer, now = 0): TlsUnwrapResult {
  const h = keys.hmacSize;
  if (wire.length < OPCODE_SID + h + PID_SIZE) return { ok: false, reason: 'truncated' };
  if (!contextsOf(keys).verify.verify(wire, 0, wire.length)) return { ok: false, reason: 'bad-hmac' };
  const packetId = wire.readUInt32BE(OPCODE_SID + h);
  const time = wire.readUInt32BE(OPCODE_SID + h + 4);
  if (replay !== null && !replay.check(packetId, time, now)) return { ok: false, reason: 'replay' };
  const packet = Buffer.allocUnsafe(wire.length - h - PID_SIZE);
  wire.copy(packet, 0, 0, OPCODE_SID);
  wire.copy(packet, OPCODE_SID, OPCODE_SID + h + PID_SIZE);
  return { ok: true, packet, packetId, time };
}

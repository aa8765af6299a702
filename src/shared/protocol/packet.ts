// Codec for OpenVPN packets as they are once any control-channel wrapping is gone.
//
// Composition contract (how tls-wrap*.ts and the session layer use this file):
//
//   no wrapping  [op|kid 1][own sid 8][ BODY ]
//   tls-auth     [op|kid 1][own sid 8][HMAC H][replay pid 4][time 4][ BODY ]          (BODY in clear)
//   tls-crypt    [op|kid 1][own sid 8][replay pid 4][time 4][tag 32][ AES-CTR(BODY) ]
//   tls-crypt-v2 as tls-crypt, and for P_CONTROL_HARD_RESET_CLIENT_V3 / P_CONTROL_WKC_V1 the
//                wrapped client key follows the whole wrapped packet: [..][WKc .. len(2)]
//
//   BODY = [ack_count 1][acked message ids 4*n][remote sid 8, only if n >= 1]
//          [message packet-id 4, absent for P_ACK_V1][payload, absent for P_ACK_V1]
//
// - parseControlHeader(datagram) reads the first 9 bytes (opcode, key_id, own session id), which
//   every mode leaves in clear; it is what a server looks at before it knows the session.
// - parseControlBody(opcode, body) parses BODY; the wrap module hands it the bytes after its own
//   fields (tls-auth: datagram.subarray(9 + H + 8); tls-crypt: the decrypted plaintext).
// - writeControlHeader/writeControlBody build the same pieces; the wrap module writes the header,
//   its fields, then the body (or encrypts a body built with buildControlBody).
// - splitWrappedClientKey/appendWrappedClientKey strip or add the tls-crypt-v2 WKc trailer on
//   the outer datagram, before unwrapping / after wrapping.
// - parseControlPacket/buildControlPacket do header + body for the no-wrapping mode, and for any
//   wrap module whose unwrap returns (or whose wrap takes) [op|kid][sid][BODY], as tls-auth.ts
//   and tls-crypt.ts do.
//
// Session rules stay with the caller, which knows the session: hard resets use key_id 0 and
// message packet-id 0, the remote session id must equal our own, session ids must not be all
// zero (isSessionIdDefined), and a payload is at most ~1600 bytes.
//
// Parsed Buffers (session ids, payload) are views into the input, not copies: copy them if the
// input buffer is reused before you are done. Parsing never throws; building throws RangeError
// only for caller bugs (wrong session id size, too many acks), never for peer input.

import {
  P_ACK_V1,
  P_CONTROL_HARD_RESET_CLIENT_V1,
  P_CONTROL_HARD_RESET_SERVER_V1,
  P_DATA_V1,
  P_DATA_V2,
  SID_SIZE,
  firstByte,
  isControlOpcode,
  keyIdOf,
  opcodeOf,
  type ControlOpcode,
  type ReliableOpcode,
} from './opcodes';

/** Most ACKs in one packet; a 2.6 peer drops a packet with more (reliable.h RELIABLE_ACK_SIZE). */
export const RELIABLE_ACK_SIZE = 8;
/** Most ACKs OpenVPN piggy-backs on a packet that is not a P_ACK_V1 (ssl.h). */
export const CONTROL_SEND_ACK_MAX = 4;
/** Opcode/key_id byte plus own session id. */
export const CONTROL_HEADER_SIZE = 1 + SID_SIZE;
/** tls-crypt-v2 wrapped client key bounds (tls_crypt.h): 32-byte tag + 2-byte length at least. */
export const TLS_CRYPT_V2_MAX_WKC_LEN = 1024;
export const TLS_CRYPT_V2_MIN_WKC_LEN = 32 + 2;
/** Early-negotiation TLV in a hard-reset payload (ssl_pkt.h). */
export const TLV_TYPE_EARLY_NEG_FLAGS = 0x0001;
export const EARLY_NEG_FLAG_RESEND_WKC = 0x0001;

/** Bytes taken by an ack block with n acks (reliable.h ACK_SIZE). */
export function ackSize(n: number): number {
  return 1 + (n > 0 ? SID_SIZE : 0) + 4 * n;
}

/** Every reason a parser here refuses input (the checks of outside input list them). */
export const PARSE_REJECTS = [
  'truncated',
  'bad-opcode',
  'key-method-1',
  'not-control',
  'not-data',
  'too-many-acks',
  'bad-wkc-length',
  'bad-tlv',
] as const;
export type ParseReject = (typeof PARSE_REJECTS)[number];

export type ParseResult<T> = { ok: true; value: T } | { ok: false; reason: ParseReject };

function reject<T>(reason: ParseReject): ParseResult<T> {
  return { ok: false, reason };
}

// ---------------------------------------------------------------------------------------------
// First byte

export type PacketKind =
  { kind: 'control'; opcode: ControlOpcode; keyId: number } | { kind: 'data-v1'; keyId: number } | { kind: 'data-v2'; keyId: number };

/** Tells control from data by the first byte; rejects opcodes 2.6 does not accept. */
export function classifyPacket(buf: Uint8Array): ParseResult<PacketKind> {
  if (buf.length < 1) return reject('truncated');
  const op = opcodeOf(buf[0]!);
  const keyId = keyIdOf(buf[0]!);
  if (op === P_DATA_V2) return { ok: true, value: { kind: 'data-v2', keyId } };
  if (op === P_DATA_V1) return { ok: true, value: { kind: 'data-v1', keyId } };
  if (isControlOpcode(op)) return { ok: true, value: { kind: 'control', opcode: op, keyId } };
  if (op === P_CONTROL_HARD_RESET_CLIENT_V1 || op === P_CONTROL_HARD_RESET_SERVER_V1) {
    return reject('key-method-1');
  }
  return reject('bad-opcode');
}

// ---------------------------------------------------------------------------------------------
// Control header: [op|kid][own sid]

export interface ControlHeader {
  opcode: ControlOpcode;
  keyId: number;
  /** The sender's own session id (view into the input). */
  sessionId: Buffer;
}

export function parseControlHeader(buf: Buffer): ParseResult<ControlHeader> {
  const k = classifyPacket(buf);
  if (!k.ok) return k;
  if (k.value.kind !== 'control') return reject('not-control');
  if (buf.length < CONTROL_HEADER_SIZE) return reject('truncated');
  return {
    ok: true,
    value: { opcode: k.value.opcode, keyId: k.value.keyId, sessionId: buf.subarray(1, CONTROL_HEADER_SIZE) },
  };
}

/** Writes [op|kid][sid] at offset; returns the bytes written (9). */
export function writeControlHeader(out: Buffer, offset: number, opcode: ControlOpcode, keyId: number, sessionId: Uint8Array): number {
  checkSid(sessionId, 'sessionId');
  out[offset] = firstByte(opcode, keyId);
  out.set(sessionId, offset + 1);
  return CONTROL_HEADER_SIZE;
}

// ---------------------------------------------------------------------------------------------
// Control body: ack block, message packet-id, payload

interface AckFields {
  /** Message packet-ids of the peer's messages that this packet acknowledges (0..8). */
  acks: number[];
  /** The peer's session id as the sender knows it; present iff acks.length >= 1. */
  remoteSessionId: Buffer | null;
}

export type ControlBody = ({ kind: 'ack' } & AckFields) | ({ kind: 'message'; messageId: number; payload: Buffer } & AckFields);

/**
 * Parses BODY (see top of file) for a control opcode. Bytes after the acks of a P_ACK_V1 are
 * ignored, as OpenVPN does.
 */
export function parseControlBody(opcode: ControlOpcode, body: Buffer): ParseResult<ControlBody> {
  if (body.length < 1) return reject('truncated');
  const n = body[0]!;
  if (n > RELIABLE_ACK_SIZE) return reject('too-many-acks');
  if (body.length < ackSize(n)) return reject('truncated');
  let off = 1;
  const acks: number[] = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    acks[i] = body.readUInt32BE(off);
    off += 4;
  }
  let remoteSessionId: Buffer | null = null;
  if (n > 0) {
    remoteSessionId = body.subarray(off, off + SID_SIZE);
    off += SID_SIZE;
  }
  if (opcode === P_ACK_V1) return { ok: true, value: { kind: 'ack', acks, remoteSessionId } };
  if (body.length < off + 4) return reject('truncated');
  const messageId = body.readUInt32BE(off);
  off += 4;
  return {
    ok: true,
    value: { kind: 'message', acks, remoteSessionId, messageId, payload: body.subarray(off) },
  };
}

/** Length writeControlBody will produce for these fields. */
export function controlBodyLength(body: ControlBody): number {
  return ackSize(body.acks.length) + (body.kind === 'message' ? 4 + body.payload.length : 0);
}

/** Writes BODY at offset; returns the bytes written. `out` must have controlBodyLength() room. */
export function writeControlBody(out: Buffer, offset: number, body: ControlBody): number {
  const n = body.acks.length;
  if (n > RELIABLE_ACK_SIZE) throw new RangeError(`at most ${RELIABLE_ACK_SIZE} acks per packet, got ${n}`);
  let off = offset;
  out[off++] = n;
  for (let i = 0; i < n; i++) {
    out.writeUInt32BE(body.acks[i]!, off);
    off += 4;
  }
  if (n > 0) {
    if (body.remoteSessionId === null) throw new RangeError('acks need the remote session id');
    checkSid(body.remoteSessionId, 'remoteSessionId');
    out.set(body.remoteSessionId, off);
    off += SID_SIZE;
  }
  if (body.kind === 'message') {
    out.writeUInt32BE(body.messageId, off);
    off += 4;
    out.set(body.payload, off);
    off += body.payload.length;
  }
  return off - offset;
}

export function buildControlBody(body: ControlBody): Buffer {
  const out = Buffer.allocUnsafe(controlBodyLength(body));
  writeControlBody(out, 0, body);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Whole control packet without wrapping

export type ControlPacket =
  | ({ kind: 'ack'; opcode: typeof P_ACK_V1 } & ControlPacketCommon & AckFields)
  | ({ kind: 'message'; opcode: ReliableOpcode; messageId: number; payload: Buffer } & ControlPacketCommon & AckFields);

interface ControlPacketCommon {
  keyId: number;
  sessionId: Buffer;
}

export function parseControlPacket(buf: Buffer): ParseResult<ControlPacket> {
  const h = parseControlHeader(buf);
  if (!h.ok) return h;
  const { opcode, keyId, sessionId } = h.value;
  const b = parseControlBody(opcode, buf.subarray(CONTROL_HEADER_SIZE));
  if (!b.ok) return b;
  const body = b.value;
  if (opcode === P_ACK_V1) {
    return { ok: true, value: { kind: 'ack', opcode, keyId, sessionId, acks: body.acks, remoteSessionId: body.remoteSessionId } };
  }
  if (body.kind !== 'message') return reject('bad-opcode'); // cannot happen: only P_ACK_V1 has no message id
  return {
    ok: true,
    value: {
      kind: 'message',
      opcode,
      keyId,
      sessionId,
      acks: body.acks,
      remoteSessionId: body.remoteSessionId,
      messageId: body.messageId,
      payload: body.payload,
    },
  };
}

export function controlPacketLength(p: ControlPacket): number {
  return CONTROL_HEADER_SIZE + controlBodyLength(p);
}

export function writeControlPacket(out: Buffer, offset: number, p: ControlPacket): number {
  if ((p.kind === 'ack') !== (p.opcode === P_ACK_V1)) throw new RangeError('kind "ack" goes with P_ACK_V1 only');
  const h = writeControlHeader(out, offset, p.opcode, p.keyId, p.sessionId);
  return h + writeControlBody(out, offset + h, p);
}

export function buildControlPacket(p: ControlPacket): Buffer {
  const out = Buffer.allocUnsafe(controlPacketLength(p));
  writeControlPacket(out, 0, p);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Data channel headers (6.1): P_DATA_V1 = [op|kid]; P_DATA_V2 = [op|kid][peer-id 24 BE]

export type DataHeader =
  { kind: 'data-v1'; keyId: number; headerLength: 1 } | { kind: 'data-v2'; keyId: number; peerId: number; headerLength: 4 };

export const DATA_V1_HEADER_SIZE = 1;
export const DATA_V2_HEADER_SIZE = 4;

export function parseDataHeader(buf: Uint8Array): ParseResult<DataHeader> {
  const k = classifyPacket(buf);
  if (!k.ok) return k;
  if (k.value.kind === 'data-v1') return { ok: true, value: { kind: 'data-v1', keyId: k.value.keyId, headerLength: 1 } };
  if (k.value.kind !== 'data-v2') return reject('not-data');
  if (buf.length < DATA_V2_HEADER_SIZE) return reject('truncated');
  return { ok: true, value: { kind: 'data-v2', keyId: k.value.keyId, peerId: readPeerId(buf), headerLength: 4 } };
}

/** The 24-bit peer-id of a P_DATA_V2 packet (caller checked opcode and length >= 4). */
export function readPeerId(buf: Uint8Array): number {
  return (buf[1]! << 16) | (buf[2]! << 8) | buf[3]!;
}

export function writeDataV1Header(out: Uint8Array, offset: number, keyId: number): number {
  out[offset] = firstByte(P_DATA_V1, keyId);
  return DATA_V1_HEADER_SIZE;
}

// ---------------------------------------------------------------------------------------------
// tls-crypt-v2 WKc trailer (tls_crypt.c tls_crypt_v2_extract_client_key):
// the last 2 bytes of the datagram give the WKc length, which counts the WKc's tag, its
// ciphertext and these 2 bytes; the WKc is the last `len` bytes.

export interface WkcSplit {
  /** The wrapped packet without the trailer (view). */
  packet: Buffer;
  /** The WKc, length bytes included (view). */
  wkc: Buffer;
}

export function splitWrappedClientKey(datagram: Buffer): ParseResult<WkcSplit> {
  if (datagram.length < 1 + 2) return reject('truncated');
  const len = datagram.readUInt16BE(datagram.length - 2);
  if (len < TLS_CRYPT_V2_MIN_WKC_LEN || len > TLS_CRYPT_V2_MAX_WKC_LEN) return reject('bad-wkc-length');
  if (len > datagram.length - 1) return reject('truncated');
  const cut = datagram.length - len;
  return { ok: true, value: { packet: datagram.subarray(0, cut), wkc: datagram.subarray(cut) } };
}

export function appendWrappedClientKey(packet: Uint8Array, wkc: Uint8Array): Buffer {
  if (wkc.length < 2 || ((wkc[wkc.length - 2]! << 8) | wkc[wkc.length - 1]!) !== wkc.length) {
    throw new RangeError('WKc must end with its own length (u16 big-endian)');
  }
  return Buffer.concat([packet, wkc]);
}

// ---------------------------------------------------------------------------------------------
// Early-negotiation TLVs: payload of a hard reset with message packet-id 0 (ssl.c
// parse_early_negotiation_tlvs). [type u16][len u16][value]; unknown types are skipped.

export interface EarlyNegotiation {
  /** EARLY_NEG_FLAGS value, 0 when absent. */
  flags: number;
}

export function parseEarlyNegotiation(payload: Buffer): ParseResult<EarlyNegotiation> {
  let flags = 0;
  let off = 0;
  while (off < payload.length) {
    if (payload.length - off < 4) return reject('bad-tlv');
    const type = payload.readUInt16BE(off);
    const len = payload.readUInt16BE(off + 2);
    off += 4;
    if (payload.length - off < len) return reject('bad-tlv');
    if (type === TLV_TYPE_EARLY_NEG_FLAGS) {
      if (len !== 2) return reject('bad-tlv');
      flags |= payload.readUInt16BE(off);
    }
    off += len;
  }
  return { ok: true, value: { flags } };
}

/** The TLV a 2.6 server puts in its stateless reset to ask for the WKc again. */
export function buildEarlyNegFlags(flags: number): Buffer {
  const out = Buffer.allocUnsafe(6);
  out.writeUInt16BE(TLV_TYPE_EARLY_NEG_FLAGS, 0);
  out.writeUInt16BE(2, 2);
  out.writeUInt16BE(flags & 0xffff, 4);
  return out;
}

// ---------------------------------------------------------------------------------------------

/** An all-zero session id means "undefined" and is never valid on the wire (session_id.h). */
export function isSessionIdDefined(sid: Uint8Array): boolean {
  for (let i = 0; i < sid.length; i++) if (sid[i] !== 0) return true;
  return false;
}

function checkSid(sid: Uint8Array, what: string): void {
  if (sid.length !== SID_SIZE) throw new RangeError(`${what} must be ${SID_SIZE} bytes, got ${sid.length}`);
}

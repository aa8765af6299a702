// OCC messages carried in decrypted data payloads (occ.c, occ.h; wire doc 6.8): the 16-byte
// OCC magic, a one-byte opcode, then opcode data. Matched by prefix and consumed, never
// forwarded to the tun device. 2.6 in TLS mode only really uses OCC_EXIT (explicit-exit-notify
// without cc-exit); the rest is here for completeness and for old peers.

import { isPingMessage } from './ping';

export const OCC_STRING_SIZE = 16;
export const OCC_MAGIC: Readonly<Uint8Array> = Uint8Array.of(
  0x28,
  0x7f,
  0x34,
  0x6b,
  0xd4,
  0xef,
  0x7a,
  0x81,
  0x2d,
  0x56,
  0xb8,
  0xd3,
  0xaf,
  0xc5,
  0x45,
  0x9c,
);

export const OCC_REQUEST = 0;
export const OCC_REPLY = 1;
export const OCC_MTU_LOAD_REQUEST = 2;
export const OCC_MTU_LOAD = 3;
export const OCC_MTU_REQUEST = 4;
export const OCC_MTU_REPLY = 5;
export const OCC_EXIT = 6;

export type OccMessage =
  | { op: 'request' }
  /** The peer's options string (4.3), without its NUL. */
  | { op: 'reply'; options: string }
  | { op: 'mtu-load-request'; size: number }
  /** Filler of `length` bytes (random on the wire; zeros when we build it). */
  | { op: 'mtu-load'; length: number }
  | { op: 'mtu-request' }
  | { op: 'mtu-reply'; maxRecv: number; maxSend: number }
  | { op: 'exit' };

export type OccParseResult =
  { ok: true; message: OccMessage } | { ok: false; reason: 'not-occ' | 'truncated' | 'unknown-opcode' | 'bad-options-string' };

/** is_occ_msg: the plaintext starts with the OCC magic. */
export function isOccMessage(memory: Uint8Array, offset: number, length: number): boolean {
  if (length < OCC_STRING_SIZE) return false;
  for (let i = 0; i < OCC_STRING_SIZE; i++) {
    if (memory[offset + i] !== OCC_MAGIC[i]) return false;
  }
  return true;
}

export type PayloadKind = 'ping' | 'occ' | 'packet';

/** What a decrypted data payload is (forward.c process_incoming_link_part2): only 'packet' goes to tun. */
export function payloadKind(memory: Uint8Array, offset: number, length: number): PayloadKind {
  if (isPingMessage(memory, offset, length)) return 'ping';
  if (isOccMessage(memory, offset, length)) return 'occ';
  return 'packet';
}

function u16(memory: Uint8Array, at: number): number {
  return (memory[at]! << 8) | memory[at + 1]!;
}

export function parseOccMessage(memory: Uint8Array, offset: number, length: number): OccParseResult {
  if (!isOccMessage(memory, offset, length)) return { ok: false, reason: 'not-occ' };
  if (length < OCC_STRING_SIZE + 1) return { ok: false, reason: 'truncated' };
  const at = offset + OCC_STRING_SIZE + 1;
  const rest = length - OCC_STRING_SIZE - 1;
  switch (memory[offset + OCC_STRING_SIZE]) {
    case OCC_REQUEST:
      return { ok: true, message: { op: 'request' } };
    case OCC_REPLY: {
      let end = at;
      while (end < at + rest && memory[end] !== 0) end++;
      for (let i = at; i < end; i++) {
        const c = memory[i]!;
        if (c < 0x20 || c > 0x7e) return { ok: false, reason: 'bad-options-string' };
      }
      return {
        ok: true,
        message: { op: 'reply', options: Buffer.from(memory.buffer, memory.byteOffset + at, end - at).toString('latin1') },
      };
    }
    case OCC_MTU_LOAD_REQUEST:
      if (rest < 2) return { ok: false, reason: 'truncated' };
      return { ok: true, message: { op: 'mtu-load-request', size: u16(memory, at) } };
    case OCC_MTU_LOAD:
      return { ok: true, message: { op: 'mtu-load', length: rest } };
    case OCC_MTU_REQUEST:
      return { ok: true, message: { op: 'mtu-request' } };
    case OCC_MTU_REPLY:
      if (rest < 4) return { ok: false, reason: 'truncated' };
      return { ok: true, message: { op: 'mtu-reply', maxRecv: u16(memory, at), maxSend: u16(memory, at + 2) } };
    case OCC_EXIT:
      return { ok: true, message: { op: 'exit' } };
    default:
      return { ok: false, reason: 'unknown-opcode' };
  }
}

/** Bytes writeOccMessage needs for `message`. */
export function occMessageLength(message: OccMessage): number {
  const base = OCC_STRING_SIZE + 1;
  switch (message.op) {
    case 'reply':
      return base + Buffer.byteLength(message.options, 'latin1') + 1;
    case 'mtu-load-request':
      return base + 2;
    case 'mtu-load':
      return base + message.length;
    case 'mtu-reply':
      return base + 4;
    case 'request':
    case 'mtu-request':
    case 'exit':
      return base;
  }
}

function checkU16(v: number, what: string): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffff) throw new RangeError(`OCC ${what} ${v} is not a 16-bit value`);
}

/** Writes the plaintext of an OCC message at `offset`; returns its length. */
export function writeOccMessage(memory: Uint8Array, offset: number, message: OccMessage): number {
  const total = occMessageLength(message);
  if (offset + total > memory.length) throw new RangeError(`OCC message of ${total} bytes does not fit at ${offset}`);
  memory.set(OCC_MAGIC, offset);
  let at = offset + OCC_STRING_SIZE;
  switch (message.op) {
    case 'request':
      memory[at++] = OCC_REQUEST;
      break;
    case 'reply': {
      memory[at++] = OCC_REPLY;
      for (let i = 0; i < message.options.length; i++) {
        const c = message.options.charCodeAt(i);
        if (c < 0x20 || c > 0x7e) throw new RangeError('OCC options string must be printable ASCII');
        memory[at++] = c;
      }
      memory[at++] = 0;
      break;
    }
    case 'mtu-load-request':
      checkU16(message.size, 'load size');
      memory[at++] = OCC_MTU_LOAD_REQUEST;
      memory[at++] = message.size >>> 8;
      memory[at++] = message.size & 0xff;
      break;
    case 'mtu-load':
      memory[at++] = OCC_MTU_LOAD;
      memory.fill(0, at, at + message.length);
      at += message.length;
      break;
    case 'mtu-request':
      memory[at++] = OCC_MTU_REQUEST;
      break;
    case 'mtu-reply':
      checkU16(message.maxRecv, 'max_recv');
      checkU16(message.maxSend, 'max_send');
      memory[at++] = OCC_MTU_REPLY;
      memory[at++] = message.maxRecv >>> 8;
      memory[at++] = message.maxRecv & 0xff;
      memory[at++] = message.maxSend >>> 8;
      memory[at++] = message.maxSend & 0xff;
      break;
    case 'exit':
      memory[at++] = OCC_EXIT;
      break;
  }
  return at - offset;
}

/** The plaintext of an OCC message in a new buffer (cold path). */
export function buildOccMessage(message: OccMessage): Buffer {
  const out = Buffer.alloc(occMessageLength(message));
  writeOccMessage(out, 0, message);
  return out;
}

/** What the options string of key method 2 (options.c options_string) says about one end. */
export interface OccOptionsDescription {
  readonly role: 'tls-server' | 'tls-client';
  readonly transport: 'udp' | 'tcp-server' | 'tcp-client';
  readonly tunMtu: number;
  /**
   * The data cipher announced as `cipher X`, or null to leave `cipher` out (OpenVPN does when
   * its --cipher is not one of its --data-ciphers).
   */
  readonly cipher: string | null;
  /** The HMAC digest of a CBC cipher (`auth SHA256`); null for AEAD ciphers: `[null-digest]`. */
  readonly auth: string | null;
  /** The cipher's key length in bits (`keysize 128` for AES-128-CBC). */
  readonly keysize: number;
}

/** What a default OpenVPN 2.6 sends; NCP peers never act on it (options_string's comment). */
const OCC_LINK_MTU = 1559;

/**
 * The `proto` of an options string, as OpenVPN's proto_remote() spells it: UDPv4, TCPv4_SERVER
 * and TCPv4_CLIENT whatever the address family, so that peers on IPv6 compare equal too.
 */
function occProto(transport: OccOptionsDescription['transport']): string {
  switch (transport) {
    case 'udp':
      return 'UDPv4';
    case 'tcp-server':
      return 'TCPv4_SERVER';
    case 'tcp-client':
      return 'TCPv4_CLIENT';
  }
}

/**
 * The options string of key method 2 (also OCC_REPLY's payload): peers compare it with their
 * own only to warn, and a 2.6 peer reads `cipher` from it when the other end does no NCP.
 */
export function occOptionsString(d: OccOptionsDescription): string {
  return [
    'V4',
    'dev-type tun',
    `link-mtu ${OCC_LINK_MTU}`,
    `tun-mtu ${d.tunMtu}`,
    `proto ${occProto(d.transport)}`,
    ...(d.cipher !== null ? [`cipher ${d.cipher}`] : []),
    `auth ${d.auth ?? '[null-digest]'}`,
    `keysize ${d.keysize}`,
    'key-method 2',
    d.role,
  ].join(',');
}

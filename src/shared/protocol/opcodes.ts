// OpenVPN packet opcodes and the first byte of every packet (ssl_pkt.h).
// byte0 = (opcode << 3) | key_id.

export const P_CONTROL_HARD_RESET_CLIENT_V1 = 1 as const; // key-method 1, removed: only named to reject it
export const P_CONTROL_HARD_RESET_SERVER_V1 = 2 as const; // key-method 1, removed: only named to reject it
export const P_CONTROL_SOFT_RESET_V1 = 3 as const;
export const P_CONTROL_V1 = 4 as const;
export const P_ACK_V1 = 5 as const;
export const P_DATA_V1 = 6 as const;
export const P_CONTROL_HARD_RESET_CLIENT_V2 = 7 as const;
export const P_CONTROL_HARD_RESET_SERVER_V2 = 8 as const;
export const P_DATA_V2 = 9 as const;
export const P_CONTROL_HARD_RESET_CLIENT_V3 = 10 as const;
export const P_CONTROL_WKC_V1 = 11 as const;

export const P_FIRST_OPCODE = 3 as const;
export const P_LAST_OPCODE = 11 as const;

export const P_OPCODE_SHIFT = 3 as const;
export const P_KEY_ID_MASK = 0x07;

/** Session id size (session_id.h SID_SIZE). */
export const SID_SIZE = 8;

/** 24-bit peer-id meaning "none" (openvpn.h MAX_PEER_ID). */
export const MAX_PEER_ID = 0xffffff;

/** Control opcodes that carry a message packet-id and go through the reliability layer. */
export type ReliableOpcode =
  | typeof P_CONTROL_SOFT_RESET_V1
  | typeof P_CONTROL_V1
  | typeof P_CONTROL_HARD_RESET_CLIENT_V2
  | typeof P_CONTROL_HARD_RESET_SERVER_V2
  | typeof P_CONTROL_HARD_RESET_CLIENT_V3
  | typeof P_CONTROL_WKC_V1;

export type ControlOpcode = ReliableOpcode | typeof P_ACK_V1;
export type DataOpcode = typeof P_DATA_V1 | typeof P_DATA_V2;
export type Opcode = ControlOpcode | DataOpcode;

export function opcodeOf(byte0: number): number {
  return (byte0 & 0xff) >>> P_OPCODE_SHIFT;
}

export function keyIdOf(byte0: number): number {
  return byte0 & P_KEY_ID_MASK;
}

export function firstByte(opcode: number, keyId: number): number {
  return ((opcode << P_OPCODE_SHIFT) | (keyId & P_KEY_ID_MASK)) & 0xff;
}

export function isReliableOpcode(op: number): op is ReliableOpcode {
  return (
    op === P_CONTROL_SOFT_RESET_V1 ||
    op === P_CONTROL_V1 ||
    op === P_CONTROL_HARD_RESET_CLIENT_V2 ||
    op === P_CONTROL_HARD_RESET_SERVER_V2 ||
    op === P_CONTROL_HARD_RESET_CLIENT_V3 ||
    op === P_CONTROL_WKC_V1
  );
}

/** Every control opcode (P_ACK_V1 included), in opcode order of the protocol's history. */
export const CONTROL_OPCODES: readonly ControlOpcode[] = [
  P_CONTROL_SOFT_RESET_V1,
  P_CONTROL_V1,
  P_ACK_V1,
  P_CONTROL_HARD_RESET_CLIENT_V2,
  P_CONTROL_HARD_RESET_SERVER_V2,
  P_CONTROL_HARD_RESET_CLIENT_V3,
  P_CONTROL_WKC_V1,
];

export function isControlOpcode(op: number): op is ControlOpcode {
  return op === P_ACK_V1 || isReliableOpcode(op);
}

/** Hard resets start a new session; they always use key_id 0 and message packet-id 0. */
export function isHardReset(op: number): boolean {
  return op === P_CONTROL_HARD_RESET_CLIENT_V2 || op === P_CONTROL_HARD_RESET_SERVER_V2 || op === P_CONTROL_HARD_RESET_CLIENT_V3;
}

/** tls-crypt-v2 appends the wrapped client key (WKc) after the wrapped packet for these. */
export function carriesWrappedClientKey(op: number): boolean {
  return op === P_CONTROL_HARD_RESET_CLIENT_V3 || op === P_CONTROL_WKC_V1;
}

const NAMES: readonly string[] = [
  'P_???',
  'P_CONTROL_HARD_RESET_CLIENT_V1',
  'P_CONTROL_HARD_RESET_SERVER_V1',
  'P_CONTROL_SOFT_RESET_V1',
  'P_CONTROL_V1',
  'P_ACK_V1',
  'P_DATA_V1',
  'P_CONTROL_HARD_RESET_CLIENT_V2',
  'P_CONTROL_HARD_RESET_SERVER_V2',
  'P_DATA_V2',
  'P_CONTROL_HARD_RESET_CLIENT_V3',
  'P_CONTROL_WKC_V1',
];

/** OpenVPN's own opcode names, for logs (packet_opcode_name). */
export function opcodeName(op: number): string {
  return Number.isInteger(op) && op > 0 && op < NAMES.length ? NAMES[op] : 'P_???';
}

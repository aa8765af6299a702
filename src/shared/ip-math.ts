// IPv4 addresses as unsigned 32-bit numbers, for pool and route arithmetic.
import { formatIPv4, parseIPv4 } from './ip-address';

const scratch = new Uint8Array(4);

/** Dotted quad -> u32, or -1 when the text is not IPv4. */
export function ipv4ToNumber(text: string): number {
  if (!parseIPv4(text, scratch)) return -1;
  return ((scratch[0] << 24) | (scratch[1] << 16) | (scratch[2] << 8) | scratch[3]) >>> 0;
}

export function numberToIpv4(value: number): string {
  scratch[0] = value >>> 24;
  scratch[1] = (value >>> 16) & 0xff;
  scratch[2] = (value >>> 8) & 0xff;
  scratch[3] = value & 0xff;
  return formatIPv4(scratch);
}

/** Reads a u32 IPv4 address from packet bytes. */
export function readIpv4(bytes: Uint8Array, offset: number): number {
  return ((bytes[offset] << 24) | (bytes[offset + 1] << 16) | (bytes[offset + 2] << 8) | bytes[offset + 3]) >>> 0;
}

/** Prefix length of a contiguous netmask (255.255.255.0 -> 24), or -1 when not contiguous. */
export function netmaskToBits(netmask: number): number {
  const inverted = ~netmask >>> 0;
  if ((inverted & (inverted + 1)) !== 0) return -1;
  return 32 - Math.log2(inverted + 1);
}

export function bitsToNetmask(bits: number): number {
  return bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
}

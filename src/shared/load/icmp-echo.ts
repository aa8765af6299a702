// IPv4 ICMP echo requests written straight into a data-channel send slot, and echo replies read
// back, for the load generator's in-tunnel traffic. The request's payload starts with the send
// time (float64), which the peer's kernel echoes, so no per-packet state is kept.
import type { PushOptions } from '../protocol/push-options';

export const IPV4_HEADER = 20;
export const ICMP_HEADER = 8;
/** Smallest packet we build: headers plus the 8-byte timestamp. */
export const MIN_ECHO_PACKET = IPV4_HEADER + ICMP_HEADER + 8;
export const MAX_ECHO_PACKET = 1500;

const ICMP_ECHO_REPLY = 0;
const ICMP_ECHO_REQUEST = 8;
const PROTO_ICMP = 1;

function checksum(m: Uint8Array, from: number, to: number): number {
  let sum = 0;
  let i = from;
  for (; i + 1 < to; i += 2) sum += (m[i]! << 8) | m[i + 1]!;
  if (i < to) sum += m[i]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function writeU32(m: Uint8Array, at: number, v: number): void {
  m[at] = v >>> 24;
  m[at + 1] = (v >>> 16) & 0xff;
  m[at + 2] = (v >>> 8) & 0xff;
  m[at + 3] = v & 0xff;
}

/** Dotted quad to a 32-bit number, or null. */
export function ipv4ToNumber(text: string): number | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  let v = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    v = v * 256 + n;
  }
  return v;
}

/**
 * Writes an echo request of `length` bytes (MIN_ECHO_PACKET..MAX_ECHO_PACKET) at `offset`;
 * returns the length. `sentAt` goes into the payload's first 8 bytes.
 */
export function writeEchoRequest(
  m: Uint8Array,
  offset: number,
  length: number,
  src: number,
  dst: number,
  id: number,
  seq: number,
  sentAt: number,
): number {
  m.fill(0, offset, offset + length);
  m[offset] = 0x45;
  m[offset + 2] = length >>> 8;
  m[offset + 3] = length & 0xff;
  m[offset + 6] = 0x40; // DF
  m[offset + 8] = 64; // TTL
  m[offset + 9] = PROTO_ICMP;
  writeU32(m, offset + 12, src);
  writeU32(m, offset + 16, dst);
  const ipSum = checksum(m, offset, offset + IPV4_HEADER);
  m[offset + 10] = ipSum >>> 8;
  m[offset + 11] = ipSum & 0xff;
  const icmp = offset + IPV4_HEADER;
  m[icmp] = ICMP_ECHO_REQUEST;
  m[icmp + 4] = (id >>> 8) & 0xff;
  m[icmp + 5] = id & 0xff;
  m[icmp + 6] = (seq >>> 8) & 0xff;
  m[icmp + 7] = seq & 0xff;
  new DataView(m.buffer, m.byteOffset + icmp + ICMP_HEADER, 8).setFloat64(0, sentAt);
  // The payload after the send time is zero and adds nothing to the sum: bulk traffic of
  // 1400-byte packets sums 16 bytes each instead of 1380.
  const icmpSum = checksum(m, icmp, icmp + ICMP_HEADER + 8);
  m[icmp + 2] = icmpSum >>> 8;
  m[icmp + 3] = icmpSum & 0xff;
  return length;
}

/** The send time carried by an echo reply to us (id `id`, addressed to `dst`), or -1 if it is not one. */
export function readEchoReply(m: Uint8Array, offset: number, length: number, dst: number, id: number): number {
  if (length < MIN_ECHO_PACKET || m[offset]! >>> 4 !== 4 || m[offset + 9] !== PROTO_ICMP) return -1;
  const ihl = (m[offset]! & 0x0f) * 4;
  if (ihl < IPV4_HEADER || length < ihl + ICMP_HEADER + 8) return -1;
  const to = ((m[offset + 16]! << 24) | (m[offset + 17]! << 16) | (m[offset + 18]! << 8) | m[offset + 19]!) >>> 0;
  if (to !== dst) return -1;
  const icmp = offset + ihl;
  if (m[icmp] !== ICMP_ECHO_REPLY || ((m[icmp + 4]! << 8) | m[icmp + 5]!) !== (id & 0xffff)) return -1;
  return new DataView(m.buffer, m.byteOffset + icmp + ICMP_HEADER, 8).getFloat64(0);
}

/** The ICMP sequence number of an echo reply that readEchoReply accepted. */
export function echoReplySeq(m: Uint8Array, offset: number): number {
  const icmp = offset + (m[offset]! & 0x0f) * 4;
  return (m[icmp + 6]! << 8) | m[icmp + 7]!;
}

/**
 * Where a simulated client's echo requests go, as a u32 (-1: nowhere): --target, else the pushed
 * route-gateway, else (net30 / p2p) the first pushed host route, else the ifconfig peer.
 */
export function echoTarget(target: string | null, o: PushOptions): number {
  if (target !== null) return ipv4ToNumber(target) ?? -1;
  if (o.routeGateway !== undefined) return ipv4ToNumber(o.routeGateway) ?? -1;
  const host = o.routes?.find((r) => r.netmask === undefined || r.netmask === '255.255.255.255');
  if (host !== undefined) return ipv4ToNumber(host.network) ?? -1;
  if (o.ifconfig !== undefined && o.topology !== 'subnet') return ipv4ToNumber(o.ifconfig.remoteOrNetmask) ?? -1;
  return -1;
}

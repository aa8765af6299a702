// --block-ipv6 (forward.c ipv6_send_icmp_unreachable): an IPv6 packet that would cross the tunnel
// is answered with ICMPv6 "destination unreachable, no route" instead, so a dual-stack host fails
// over to IPv4 at once rather than leaking its IPv6 traffic around an IPv4-only VPN. A client
// answers what its TUN device hands it (the answer goes back into TUN); a server answers what its
// clients send (the answer goes back to that client). The answer comes from the tunnel's IPv6
// peer address where there is one, else from fe80::7, and carries as much of the refused packet as
// fits in 1280 bytes of ICMPv6 payload (at least 64), as OpenVPN builds it.
import { parseIPv6 } from '../ip-address';

const IPV6_HEADER = 40;
const ICMP6_HEADER = 8;
const NEXT_HEADER_ICMPV6 = 58;
const ICMP6_DESTINATION_UNREACHABLE = 1;
const ICMP6_NO_ROUTE = 0;
/** RFC 4443: an error message should carry as much of the offending packet as fits in 1280 bytes. */
const MAX_ICMP6_PAYLOAD = 1280;
const MIN_ICMP6_PAYLOAD = 64;

/** OpenVPN's source address for the answer when the tunnel has no IPv6 peer address. */
export const BLOCK_IPV6_DEFAULT_SOURCE = 'fe80::7';

/** What an end answers blocked packets with: the answer's source and the tunnel MTU. */
export interface BlockIpv6Answer {
  readonly source: Uint8Array;
  readonly tunMtu: number;
}

/** Whether memory[offset, offset + length) holds an IPv6 packet (version 6, a whole header). */
export function isIpv6Packet(memory: Uint8Array, offset: number, length: number): boolean {
  return length >= IPV6_HEADER && memory[offset]! >> 4 === 6;
}

/** The 16 bytes of `address` (an IPv6 address in text), or of fe80::7 when it is not one. */
export function blockIpv6Source(address: string | undefined): Uint8Array {
  const out = new Uint8Array(16);
  if (address === undefined || !parseIPv6(address, out)) parseIPv6(BLOCK_IPV6_DEFAULT_SOURCE, out);
  return out;
}

/**
 * The ICMPv6 no-route answer to the IPv6 packet at memory[offset, offset + length), from
 * `source` (16 bytes); `tunMtu` bounds its size. The refused packet's traffic class, flow label
 * and hop limit are kept, as OpenVPN copies its header.
 */
export function icmp6NoRoute(memory: Uint8Array, offset: number, length: number, source: Uint8Array, tunMtu: number): Buffer {
  const payload = Math.min(length, Math.max(MIN_ICMP6_PAYLOAD, Math.min(MAX_ICMP6_PAYLOAD, tunMtu - IPV6_HEADER - ICMP6_HEADER)));
  const out = Buffer.alloc(IPV6_HEADER + ICMP6_HEADER + payload);
  // Version, traffic class and flow label as they came.
  out.set(memory.subarray(offset, offset + 4), 0);
  out.writeUInt16BE(ICMP6_HEADER + payload, 4);
  out[6] = NEXT_HEADER_ICMPV6;
  out[7] = memory[offset + 7]!;
  out.set(source, 8);
  // Back to whoever sent it.
  out.set(memory.subarray(offset + 8, offset + 24), 24);
  out[IPV6_HEADER] = ICMP6_DESTINATION_UNREACHABLE;
  out[IPV6_HEADER + 1] = ICMP6_NO_ROUTE;
  out.set(memory.subarray(offset, offset + payload), IPV6_HEADER + ICMP6_HEADER);
  out.writeUInt16BE(icmp6Checksum(out), IPV6_HEADER + 2);
  return out;
}

/** The ICMPv6 checksum of the message in `packet` (its field still 0): RFC 4443 over the pseudo-header. */
function icmp6Checksum(packet: Buffer): number {
  const upperLength = packet.length - IPV6_HEADER;
  // Pseudo-header: source, destination, upper-layer length, next header.
  let sum = upperLength + NEXT_HEADER_ICMPV6;
  for (let i = 8; i < IPV6_HEADER; i += 2) sum += (packet[i]! << 8) | packet[i + 1]!;
  for (let i = IPV6_HEADER; i < packet.length; i += 2) sum += (packet[i]! << 8) | (i + 1 < packet.length ? packet[i + 1]! : 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

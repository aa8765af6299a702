// The addresses a client may send from inside the tunnel (multi.c multi_process_incoming_link:
// "bad source address from client"): its virtual IPv4 / IPv6 address and its iroutes, as the
// main thread assigned them. Parsed once from text, checked per packet on numbers and bytes.
import { parseIPv4, parseIPv6 } from '../../shared/ip-address';
import { bitsToNetmask } from '../../shared/ip-math';
import type { ClientAssignment } from '../../shared/shard-protocol';

export class SourceCheck {
  /** Virtual IPv4 as u32 (-1: none) and IPv6 bytes (null: none). */
  private virtual4 = -1;
  private virtual6: Uint8Array | null = null;
  private iroutes4: { network: number; mask: number }[] = [];
  private iroutes6: { network: Uint8Array; bits: number }[] = [];

  set(assignment: ClientAssignment): void {
    const bytes4 = new Uint8Array(4);
    if (assignment.virtual4 !== null && parseIPv4(assignment.virtual4, bytes4)) this.virtual4 = toNumber(bytes4);
    if (assignment.virtual6 !== null) {
      const bytes6 = new Uint8Array(16);
      if (parseIPv6(assignment.virtual6, bytes6)) this.virtual6 = bytes6;
    }
    this.iroutes4 = assignment.iroutes4.flatMap((r) => {
      const net = new Uint8Array(4);
      if (!parseIPv4(r.network, net)) return [];
      const mask = bitsToNetmask(r.bits);
      return [{ network: (toNumber(net) & mask) >>> 0, mask }];
    });
    this.iroutes6 = assignment.iroutes6.flatMap((r) => {
      const net = new Uint8Array(16);
      return parseIPv6(r.network, net) ? [{ network: net, bits: r.bits }] : [];
    });
  }

  /** Whether the inner packet at packet[offset..] comes from the client's address or iroutes. */
  owns(packet: Uint8Array, offset: number, length: number): boolean {
    const version = packet[offset] >> 4;
    if (version === 4 && length >= 20) {
      const src = ((packet[offset + 12] << 24) | (packet[offset + 13] << 16) | (packet[offset + 14] << 8) | packet[offset + 15]) >>> 0;
      if (src === this.virtual4) return true;
      for (const route of this.iroutes4) if ((src & route.mask) >>> 0 === route.network) return true;
      return false;
    }
    if (version === 6 && length >= 40) {
      const v6 = this.virtual6;
      if (v6 !== null && prefixMatch(packet, offset + 8, v6, 128)) return true;
      for (const route of this.iroutes6) if (prefixMatch(packet, offset + 8, route.network, route.bits)) return true;
      return false;
    }
    return false;
  }
}

function toNumber(bytes: Uint8Array): number {
  return ((bytes[0] << 24) | (bytes[1] << 16) | (bytes[2] << 8) | bytes[3]) >>> 0;
}

function prefixMatch(bytes: Uint8Array, offset: number, network: Uint8Array, bits: number): boolean {
  for (let i = 0; i < 16 && bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((bytes[offset + i] & mask) !== (network[i] & mask)) return false;
  }
  return true;
}

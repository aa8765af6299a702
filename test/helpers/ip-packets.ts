// Crafting and reading raw IPv4/IPv6 UDP packets for tests that talk to a TUN device directly.
import { parseIPv4, parseIPv6 } from '../../src/shared/ip-address';

function checksum(bytes: Uint8Array, initial = 0): number {
  let sum = initial;
  for (let i = 0; i + 1 < bytes.length; i += 2) sum += (bytes[i] << 8) | bytes[i + 1];
  if (bytes.length % 2 === 1) sum += bytes[bytes.length - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

function finish(sum: number): number {
  const value = ~sum & 0xffff;
  return value === 0 ? 0xffff : value;
}

function udpHeader(srcPort: number, dstPort: number, payload: Uint8Array): Buffer {
  const udp = Buffer.alloc(8 + payload.length);
  udp.writeUInt16BE(srcPort, 0);
  udp.writeUInt16BE(dstPort, 2);
  udp.writeUInt16BE(udp.length, 4);
  udp.set(payload, 8);
  return udp;
}

export function ipv4Udp(src: string, dst: string, srcPort: number, dstPort: number, payload: Uint8Array): Buffer {
  const udp = udpHeader(srcPort, dstPort, payload);
  const header = Buffer.alloc(20);
  header[0] = 0x45;
  header.writeUInt16BE(20 + udp.length, 2);
  header[8] = 64; // TTL
  header[9] = 17; // UDP
  parseIPv4(src, header, 12);
  parseIPv4(dst, header, 16);
  header.writeUInt16BE(finish(checksum(header)), 10);
  const pseudo = Buffer.alloc(12);
  header.copy(pseudo, 0, 12, 20);
  pseudo[9] = 17;
  pseudo.writeUInt16BE(udp.length, 10);
  udp.writeUInt16BE(finish(checksum(udp, checksum(pseudo))), 6);
  return Buffer.concat([header, udp]);
}

export function ipv6Udp(src: string, dst: string, srcPort: number, dstPort: number, payload: Uint8Array): Buffer {
  const udp = udpHeader(srcPort, dstPort, payload);
  const header = Buffer.alloc(40);
  header[0] = 0x60;
  header.writeUInt16BE(udp.length, 4);
  header[6] = 17; // next header UDP
  header[7] = 64; // hop limit
  parseIPv6(src, header, 8);
  parseIPv6(dst, header, 24);
  const pseudo = Buffer.alloc(40);
  header.copy(pseudo, 0, 8, 40);
  pseudo.writeUInt32BE(udp.length, 32);
  pseudo[39] = 17;
  udp.writeUInt16BE(finish(checksum(udp, checksum(pseudo))), 6);
  return Buffer.concat([header, udp]);
}

export interface UdpPacketView {
  version: 4 | 6;
  protocol: number;
  src: Uint8Array;
  dst: Uint8Array;
  srcPort: number;
  dstPort: number;
  payload: Buffer;
  headerChecksumOk: boolean;
}

/** Reads an IPv4 or IPv6 packet carrying UDP; null when it is something else. */
export function readUdpPacket(packet: Uint8Array): UdpPacketView | null {
  const bytes = Buffer.from(packet.buffer, packet.byteOffset, packet.byteLength);
  const version = bytes[0] >> 4;
  if (version === 4) {
    const ihl = (bytes[0] & 0x0f) * 4;
    if (bytes[9] !== 17) return null;
    const udp = bytes.subarray(ihl);
    return {
      version: 4,
      protocol: 17,
      src: bytes.subarray(12, 16),
      dst: bytes.subarray(16, 20),
      srcPort: udp.readUInt16BE(0),
      dstPort: udp.readUInt16BE(2),
      payload: Buffer.from(udp.subarray(8, udp.readUInt16BE(4))),
      headerChecksumOk: checksum(bytes.subarray(0, ihl)) === 0xffff,
    };
  }
  if (version === 6) {
    if (bytes[6] !== 17) return null;
    const udp = bytes.subarray(40);
    return {
      version: 6,
      protocol: 17,
      src: bytes.subarray(8, 24),
      dst: bytes.subarray(24, 40),
      srcPort: udp.readUInt16BE(0),
      dstPort: udp.readUInt16BE(2),
      payload: Buffer.from(udp.subarray(8, udp.readUInt16BE(4))),
      headerChecksumOk: true,
    };
  }
  return null;
}

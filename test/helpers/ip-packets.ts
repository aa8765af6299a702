// Crafting and reading raw IPv4/IPv6 packets (UDP, TCP SYNs) for tests that talk to a TUN
// device directly or rewrite packets.
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

/** A TCP header without payload; `options` padded with EOL to a multiple of 4. */
function tcpHeader(srcPort: number, dstPort: number, flags: number, options: Uint8Array): Buffer {
  const optionBytes = Math.ceil(options.length / 4) * 4;
  const tcp = Buffer.alloc(20 + optionBytes);
  tcp.writeUInt16BE(srcPort, 0);
  tcp.writeUInt16BE(dstPort, 2);
  tcp.writeUInt32BE(0x12345678, 4);
  tcp[12] = ((20 + optionBytes) / 4) << 4;
  tcp[13] = flags;
  tcp.writeUInt16BE(64240, 14);
  tcp.set(options, 20);
  return tcp;
}

const PROTOCOL = { udp: 17, tcp: 6 } as const;
/** Where each transport keeps its checksum. */
const CHECKSUM_AT = { 17: 6, 6: 16 } as Record<number, number>;

/** The sum over the pseudo header (RFC 768 / RFC 8200 8.1) of a transport segment. */
function pseudoSum(version: 4 | 6, src: Uint8Array, dst: Uint8Array, protocol: number, length: number): number {
  const pseudo = Buffer.alloc(version === 4 ? 12 : 40);
  pseudo.set(src, 0);
  pseudo.set(dst, src.length);
  if (version === 4) {
    pseudo[9] = protocol;
    pseudo.writeUInt16BE(length, 10);
  } else {
    pseudo.writeUInt32BE(length, 32);
    pseudo[39] = protocol;
  }
  return checksum(pseudo);
}

function ipv4Packet(src: string, dst: string, protocol: number, transport: Buffer): Buffer {
  const header = Buffer.alloc(20);
  header[0] = 0x45;
  header.writeUInt16BE(20 + transport.length, 2);
  header[8] = 64; // TTL
  header[9] = protocol;
  parseIPv4(src, header, 12);
  parseIPv4(dst, header, 16);
  header.writeUInt16BE(finish(checksum(header)), 10);
  const sum = pseudoSum(4, header.subarray(12, 16), header.subarray(16, 20), protocol, transport.length);
  transport.writeUInt16BE(finish(checksum(transport, sum)), CHECKSUM_AT[protocol]!);
  return Buffer.concat([header, transport]);
}

function ipv6Packet(src: string, dst: string, protocol: number, transport: Buffer): Buffer {
  const header = Buffer.alloc(40);
  header[0] = 0x60;
  header.writeUInt16BE(transport.length, 4);
  header[6] = protocol;
  header[7] = 64; // hop limit
  parseIPv6(src, header, 8);
  parseIPv6(dst, header, 24);
  const sum = pseudoSum(6, header.subarray(8, 24), header.subarray(24, 40), protocol, transport.length);
  transport.writeUInt16BE(finish(checksum(transport, sum)), CHECKSUM_AT[protocol]!);
  return Buffer.concat([header, transport]);
}

export function ipv4Udp(src: string, dst: string, srcPort: number, dstPort: number, payload: Uint8Array): Buffer {
  return ipv4Packet(src, dst, PROTOCOL.udp, udpHeader(srcPort, dstPort, payload));
}

export function ipv6Udp(src: string, dst: string, srcPort: number, dstPort: number, payload: Uint8Array): Buffer {
  return ipv6Packet(src, dst, PROTOCOL.udp, udpHeader(srcPort, dstPort, payload));
}

/** A TCP segment with no payload (a SYN when flags include 0x02) and the given option bytes. */
export function ipv4Tcp(src: string, dst: string, srcPort: number, dstPort: number, flags: number, options: Uint8Array): Buffer {
  return ipv4Packet(src, dst, PROTOCOL.tcp, tcpHeader(srcPort, dstPort, flags, options));
}

export function ipv6Tcp(src: string, dst: string, srcPort: number, dstPort: number, flags: number, options: Uint8Array): Buffer {
  return ipv6Packet(src, dst, PROTOCOL.tcp, tcpHeader(srcPort, dstPort, flags, options));
}

/** Whether the UDP or TCP checksum of an IPv4/IPv6 packet (no extension headers) is right. */
export function transportChecksumOk(packet: Uint8Array): boolean {
  const bytes = Buffer.from(packet.buffer, packet.byteOffset, packet.byteLength);
  const version = bytes[0]! >> 4;
  if (version === 4) {
    const ihl = (bytes[0]! & 0x0f) * 4;
    const transport = bytes.subarray(ihl);
    return checksum(transport, pseudoSum(4, bytes.subarray(12, 16), bytes.subarray(16, 20), bytes[9]!, transport.length)) === 0xffff;
  }
  const transport = bytes.subarray(40);
  return checksum(transport, pseudoSum(6, bytes.subarray(8, 24), bytes.subarray(24, 40), bytes[6]!, transport.length)) === 0xffff;
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

export interface TcpSegmentFields {
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  window?: number;
  options?: Uint8Array;
  payload?: Uint8Array;
  /** IPv4 identification (default 0). */
  id?: number;
}

/** A TCP segment with sequence numbers and payload, IPv4 or IPv6 by the addresses' form. */
export function tcpSegment(f: TcpSegmentFields): Buffer {
  const header = tcpHeader(f.srcPort, f.dstPort, f.flags, f.options ?? new Uint8Array(0));
  header.writeUInt32BE(f.seq >>> 0, 4);
  header.writeUInt32BE(f.ack >>> 0, 8);
  header.writeUInt16BE(f.window ?? 65535, 14);
  const transport = Buffer.concat([header, f.payload ?? new Uint8Array(0)]);
  if (f.src.includes(':')) return ipv6Packet(f.src, f.dst, PROTOCOL.tcp, transport);
  const packet = ipv4Packet(f.src, f.dst, PROTOCOL.tcp, transport);
  if (f.id !== undefined) {
    packet.writeUInt16BE(f.id, 4);
    packet.writeUInt16BE(0, 10);
    packet.writeUInt16BE(finish(checksum(packet.subarray(0, 20))), 10);
  }
  return packet;
}

export interface TcpSegmentView {
  version: 4 | 6;
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  payload: Buffer;
  /** IPv4 header checksum (true for IPv6) and the TCP checksum. */
  checksumsOk: boolean;
}

/** Reads an IPv4 or IPv6 packet carrying TCP (no extension headers); null when it is something else. */
export function readTcpSegment(packet: Uint8Array): TcpSegmentView | null {
  const bytes = Buffer.from(packet.buffer, packet.byteOffset, packet.byteLength);
  const version = bytes[0]! >> 4;
  let l4: number;
  let headerOk: boolean;
  if (version === 4) {
    if (bytes[9] !== PROTOCOL.tcp) return null;
    l4 = (bytes[0]! & 0x0f) * 4;
    headerOk = checksum(bytes.subarray(0, l4)) === 0xffff && bytes.readUInt16BE(2) === bytes.length;
  } else if (version === 6) {
    if (bytes[6] !== PROTOCOL.tcp) return null;
    l4 = 40;
    headerOk = bytes.readUInt16BE(4) + 40 === bytes.length;
  } else {
    return null;
  }
  const tcp = bytes.subarray(l4);
  return {
    version,
    srcPort: tcp.readUInt16BE(0),
    dstPort: tcp.readUInt16BE(2),
    seq: tcp.readUInt32BE(4),
    ack: tcp.readUInt32BE(8),
    flags: tcp[13]!,
    payload: Buffer.from(tcp.subarray((tcp[12]! >> 4) * 4)),
    checksumsOk: headerOk && transportChecksumOk(bytes),
  };
}

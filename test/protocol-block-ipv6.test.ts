// The ICMPv6 answer block-ipv6 builds (forward.c ipv6_send_icmp_unreachable): its header, how
// much of the refused packet it carries, and a checksum a receiver accepts. The interop test
// (interop-block-ipv6) shows the kernel taking it; this one pins the sizes and fields.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { blockIpv6Source, icmp6NoRoute, isIpv6Packet } from '../src/shared/protocol/block-ipv6';
import { parseIPv6 } from '../src/shared/ip-address';

function ipv6Packet(total: number, hopLimit = 61): Buffer {
  const p = Buffer.alloc(total);
  p.writeUInt32BE(0x6a_b1_23_45, 0); // version 6, traffic class 0xab, flow label 0x12345
  p.writeUInt16BE(total - 40, 4);
  p[6] = 17;
  p[7] = hopLimit;
  parseIPv6('fd15:53b6:dead::2', p, 8);
  parseIPv6('2001:db8::1', p, 24);
  for (let i = 40; i < total; i++) p[i] = i & 0xff;
  return p;
}

/** One's-complement sum over the pseudo-header and the ICMPv6 message: 0xffff when the checksum is right. */
function verifies(answer: Buffer): boolean {
  let sum = answer.length - 40 + 58;
  for (let i = 8; i < answer.length; i += 2) sum += (answer[i]! << 8) | (i + 1 < answer.length ? answer[i + 1]! : 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum === 0xffff;
}

test('block-ipv6 answer: no-route from the given source back to the sender, header fields kept, checksum right', () => {
  const packet = ipv6Packet(100);
  const source = blockIpv6Source('fd15:53b6:dead::1');
  const answer = icmp6NoRoute(packet, 0, packet.length, source, 1500);
  assert.equal(answer.length, 40 + 8 + 100);
  assert.equal(answer.readUInt32BE(0), 0x6a_b1_23_45);
  assert.equal(answer.readUInt16BE(4), 8 + 100);
  assert.equal(answer[6], 58);
  assert.equal(answer[7], 61, 'hop limit as it came');
  assert.deepEqual(answer.subarray(8, 24), Buffer.from(source));
  assert.deepEqual(answer.subarray(24, 40), packet.subarray(8, 24), 'to the sender');
  assert.equal(answer[40], 1, 'destination unreachable');
  assert.equal(answer[41], 0, 'no route');
  assert.deepEqual(answer.subarray(48), packet);
  assert.ok(verifies(answer));
  // An odd length, and a packet inside a larger buffer.
  const odd = ipv6Packet(101);
  const inside = Buffer.concat([Buffer.alloc(7), odd, Buffer.alloc(5)]);
  const oddAnswer = icmp6NoRoute(inside, 7, odd.length, source, 1500);
  assert.deepEqual(oddAnswer.subarray(48), odd);
  assert.ok(verifies(oddAnswer));
});

test('block-ipv6 answer: at most 1280 bytes of the packet, less to fit tun-mtu, never under 64', () => {
  const big = ipv6Packet(1500);
  const source = blockIpv6Source(undefined);
  assert.equal(icmp6NoRoute(big, 0, big.length, source, 1500).length, 48 + 1280);
  assert.equal(icmp6NoRoute(big, 0, big.length, source, 1300).length, 1300);
  assert.equal(icmp6NoRoute(big, 0, big.length, source, 100).length, 48 + 64);
  assert.ok(verifies(icmp6NoRoute(big, 0, big.length, source, 1300)));
});

test('block-ipv6: fe80::7 when the tunnel has no IPv6 peer; only version-6 packets with a whole header count', () => {
  const fallback = new Uint8Array(16);
  parseIPv6('fe80::7', fallback);
  assert.deepEqual(blockIpv6Source(undefined), fallback);
  assert.deepEqual(blockIpv6Source('not an address'), fallback);
  assert.equal(isIpv6Packet(ipv6Packet(40), 0, 40), true);
  assert.equal(isIpv6Packet(ipv6Packet(40), 0, 39), false);
  const v4 = Buffer.alloc(60);
  v4[0] = 0x45;
  assert.equal(isIpv6Packet(v4, 0, 60), false);
});

// mssfix: the MSS limit as OpenVPN 2.6 computes it, and SYN rewriting with a checksum that
// stays right; everything that is not a whole TCP SYN with an MSS option is left alone.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { clampMss, maxMss } from '../src/shared/protocol/mss';
import { ipv4Tcp, ipv4Udp, ipv6Tcp, transportChecksumOk } from './helpers/ip-packets';
import { mulberry32 } from './helpers/prng';

const DEFAULT = { size: 1492, encap: true, fixed: false };
const SYN = 0x02;
const SYN_ACK = 0x12;
const ACK = 0x10;

/** Linux's SYN options: MSS, SACK permitted, timestamps, NOP, window scale. */
function synOptions(mss: number): Uint8Array {
  return Uint8Array.of(2, 4, mss >> 8, mss & 0xff, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7);
}

const mssOf = (packet: Uint8Array, tcpAt: number): number => (packet[tcpAt + 22]! << 8) | packet[tcpAt + 23]!;

test('the limit: 1492 - outer IP/UDP - opcode/peer-id, packet-id and tag - inner IPv4/TCP', () => {
  assert.equal(maxMss(DEFAULT, 4, true), 1400);
  assert.equal(maxMss(DEFAULT, 4, false), 1403);
  assert.equal(maxMss(DEFAULT, 6, true), 1380);
  assert.equal(maxMss({ size: 1492, encap: false, fixed: false }, 4, true), 1428);
  assert.equal(maxMss({ size: 1400, encap: false, fixed: true }, 6, true), 1360);
  assert.equal(maxMss({ size: 0, encap: true, fixed: false }, 4, true), 0);
});

test('an IPv4 SYN and SYN-ACK get the limit, with a correct TCP checksum; smaller MSS values stay', () => {
  for (const flags of [SYN, SYN_ACK]) {
    const packet = ipv4Tcp('10.8.0.2', '10.8.0.1', 40000, 80, flags, synOptions(1460));
    assert.ok(transportChecksumOk(packet));
    assert.equal(clampMss(packet, 0, packet.length, 1400), true);
    assert.equal(mssOf(packet, 20), 1400);
    assert.ok(transportChecksumOk(packet), 'checksum after the rewrite');
  }
  const small = ipv4Tcp('10.8.0.2', '10.8.0.1', 40000, 80, SYN, synOptions(1200));
  const copy = Buffer.from(small);
  assert.equal(clampMss(small, 0, small.length, 1400), false);
  assert.deepEqual(small, copy);
});

test('an IPv6 SYN gets 20 less; the packet may sit at any offset of a larger buffer', () => {
  const packet = ipv6Tcp('fd00::2', 'fd00::1', 40000, 443, SYN, synOptions(1440));
  const buffer = Buffer.alloc(packet.length + 100, 0xee);
  packet.copy(buffer, 37);
  assert.equal(clampMss(buffer, 37, packet.length, 1400), true);
  const out = buffer.subarray(37, 37 + packet.length);
  assert.equal(mssOf(out, 40), 1380);
  assert.ok(transportChecksumOk(out));
  assert.equal(buffer[36], 0xee);
  assert.equal(buffer[37 + packet.length], 0xee);
});

test('left alone: non-SYN segments, UDP, fragments, truncated packets, options without MSS, mssfix 0', () => {
  const untouched = (packet: Buffer, length = packet.length, max = 1400): void => {
    const copy = Buffer.from(packet);
    assert.equal(clampMss(packet, 0, length, max), false);
    assert.deepEqual(packet, copy);
  };
  untouched(ipv4Tcp('10.8.0.2', '10.8.0.1', 1, 2, ACK, synOptions(1460)));
  untouched(ipv4Udp('10.8.0.2', '10.8.0.1', 1, 2, synOptions(1460)));
  const fragment = ipv4Tcp('10.8.0.2', '10.8.0.1', 1, 2, SYN, synOptions(1460));
  fragment[7] = 8; // fragment offset 64 bytes
  untouched(fragment);
  const whole = ipv4Tcp('10.8.0.2', '10.8.0.1', 1, 2, SYN, synOptions(1460));
  untouched(whole, whole.length - 4); // the IP total length disagrees
  untouched(ipv4Tcp('10.8.0.2', '10.8.0.1', 1, 2, SYN, Uint8Array.of(1, 1, 4, 2)));
  untouched(ipv4Tcp('10.8.0.2', '10.8.0.1', 1, 2, SYN, synOptions(1460)), undefined, 0);
  // A malformed option length ends the walk before the MSS option.
  untouched(ipv4Tcp('10.8.0.2', '10.8.0.1', 1, 2, SYN, Uint8Array.of(4, 0, 2, 4, 5, 180)));
});

test('random bytes and random damage to real SYNs never throw or write outside the packet', () => {
  const random = mulberry32(1492);
  const base = ipv4Tcp('10.8.0.2', '10.8.0.1', 40000, 80, SYN, synOptions(1460));
  for (let i = 0; i < 20_000; i++) {
    const length = Math.floor(random() * 80);
    const buffer = Buffer.alloc(length + 16, 0xaa);
    if (i % 2 === 0) for (let j = 8; j < 8 + length; j++) buffer[j] = Math.floor(random() * 256);
    else {
      base.copy(buffer, 8, 0, Math.min(length, base.length));
      if (length > 0) buffer[8 + Math.floor(random() * length)] = Math.floor(random() * 256);
    }
    clampMss(buffer, 8, length, 1400);
    for (let j = 0; j < 8; j++) assert.equal(buffer[j], 0xaa);
    for (let j = 8 + length; j < buffer.length; j++) assert.equal(buffer[j], 0xaa);
  }
});

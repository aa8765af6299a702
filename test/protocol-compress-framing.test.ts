// Compression framing of data payloads as OpenVPN 2.6 writes it without compressing
// (compstub.c, lzo.c, comp-lz4.c): framed and unframed in place for each kind, compressed
// payloads and bad header bytes refused.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { CompressFramer, FRAMING_HEADROOM, framingKind, pushedFraming, type FramingKind } from '../src/shared/protocol/compress-framing';

function framed(kind: FramingKind, payload: number[]): number[] {
  const memory = new Uint8Array(64);
  memory.set(payload, FRAMING_HEADROOM);
  const f = new CompressFramer(kind);
  f.frame(memory, FRAMING_HEADROOM, payload.length);
  return [...memory.subarray(f.start, f.start + f.length)];
}

function unframed(kind: FramingKind, wire: number[]): number[] | string {
  const memory = Uint8Array.from(wire);
  const f = new CompressFramer(kind);
  const r = f.unframe(memory, 0, wire.length);
  return r === 'ok' ? [...memory.subarray(f.start, f.start + f.length)] : r;
}

const IP = [0x45, 0, 0, 20, 1, 2, 3, 4];

test('the wire bytes of each framing, and back', () => {
  assert.deepEqual(framed('none', IP), IP);
  assert.deepEqual(framed('prefix', IP), [0xfa, ...IP]);
  assert.deepEqual(framed('swap', IP), [0xfb, ...IP.slice(1), 0x45]);
  assert.deepEqual(framed('v2', IP), IP, 'v2 leaves a packet alone unless it starts with 0x50');
  assert.deepEqual(framed('v2', [0x50, 9]), [0x50, 0, 0x50, 9]);
  for (const kind of ['none', 'prefix', 'swap', 'v2'] as const) {
    for (const payload of [IP, [0x50, 1, 2], [7], []]) {
      assert.deepEqual(unframed(kind, framed(kind, payload)), payload, `${kind} ${payload.join(',')}`);
    }
  }
});

test('compressed payloads and bad header bytes are refused', () => {
  assert.equal(unframed('prefix', [0x66, 1, 2]), 'compressed');
  assert.equal(unframed('prefix', [0x45, 1, 2]), 'bad');
  assert.equal(unframed('swap', [0x69, 1, 2]), 'compressed');
  assert.equal(unframed('swap', [0xfa, 1, 2]), 'bad');
  assert.equal(unframed('v2', [0x50, 1, 9]), 'compressed');
  assert.equal(unframed('v2', [0x50]), 'bad');
  assert.deepEqual(unframed('prefix', []), [], 'an empty payload stays empty, as in OpenVPN');
});

test('config and pushed options pick the framing OpenVPN uses', () => {
  assert.equal(framingKind('comp-lzo-no'), 'prefix');
  assert.equal(framingKind('lzo'), 'prefix');
  assert.equal(framingKind('stub'), 'swap');
  assert.equal(framingKind('lz4'), 'swap');
  assert.equal(framingKind('stub-v2'), 'v2');
  assert.equal(framingKind('lz4-v2'), 'v2');
  assert.equal(framingKind('migrate'), null);
  assert.equal(pushedFraming('comp-lzo no'), 'prefix');
  assert.equal(pushedFraming('compress'), 'swap');
  assert.equal(pushedFraming('compress lz4-v2'), 'v2');
  assert.equal(pushedFraming('route 10.0.0.0 255.0.0.0'), undefined);
});

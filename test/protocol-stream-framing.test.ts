// OpenVPN's TCP packet framing: packets split at every possible byte boundary come out whole
// and in order; a zero or oversized length stops the stream; a stalled half frame holds at
// most one packet's buffer.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';

import fc from 'fast-check';

import { StreamDeframer, frameForStream } from '../src/shared/protocol/stream-framing';

function collect(deframer: StreamDeframer, chunks: Uint8Array[]): { packets: Buffer[]; ok: boolean } {
  const packets: Buffer[] = [];
  let ok = true;
  for (const c of chunks) ok = deframer.push(c, (p) => packets.push(Buffer.from(p))) && ok;
  return { packets, ok };
}

test('packets come out whole however the stream is cut', () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 20 }),
      fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1 }),
      (sizes, cuts) => {
        const packets = sizes.map((n) => randomBytes(n));
        const stream = Buffer.concat(packets.map(frameForStream));
        const chunks: Uint8Array[] = [];
        let at = 0;
        for (let i = 0; at < stream.length; i++) {
          const n = cuts[i % cuts.length]!;
          chunks.push(stream.subarray(at, at + n));
          at += n;
        }
        const out = collect(new StreamDeframer(300), chunks);
        assert.ok(out.ok);
        assert.deepEqual(out.packets, packets);
      },
    ),
  );
});

test('a zero length or one over the maximum stops the stream for good', () => {
  const zero = new StreamDeframer(100);
  assert.deepEqual(
    collect(zero, [Buffer.concat([frameForStream(Buffer.from('a')), Buffer.from([0, 0]), frameForStream(Buffer.from('b'))])]).packets.map(
      String,
    ),
    ['a'],
  );
  assert.equal(zero.error, 'zero-length');
  assert.equal(
    zero.push(frameForStream(Buffer.from('c')), () => assert.fail('no packet after an error')),
    false,
  );
  const long = new StreamDeframer(100);
  assert.equal(
    long.push(Buffer.from([0, 101]), () => {}),
    false,
  );
  assert.equal(long.error, 'too-long');
  // The length word itself may be cut between chunks.
  const cut = new StreamDeframer(100);
  assert.equal(
    cut.push(Buffer.from([1]), () => {}),
    true,
  );
  assert.equal(
    cut.push(Buffer.from([0]), () => {}),
    false,
  );
  assert.equal(cut.error, 'too-long');
});

test('a half frame waits in one buffer of the maximum packet size', () => {
  const d = new StreamDeframer(1000);
  const frame = frameForStream(randomBytes(1000));
  assert.equal(
    d.push(frame.subarray(0, 600), () => assert.fail('not whole yet')),
    true,
  );
  assert.equal(d.buffered, 600);
  const got: Buffer[] = [];
  d.push(frame.subarray(600), (p) => got.push(Buffer.from(p)));
  assert.deepEqual(got, [frame.subarray(2)]);
  assert.equal(d.buffered, 0);
});

// Keepalive ping and OCC payloads (ping.ts, occ.ts), and the keepalive timer on injected time.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { KeepaliveTimer, PING_MAGIC, isPingMessage, writePingMessage } from '../src/shared/protocol/ping';
import { OCC_MAGIC, buildOccMessage, isOccMessage, occOptionsString, parseOccMessage, payloadKind } from '../src/shared/protocol/occ';
import type { OccMessage } from '../src/shared/protocol/occ';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

test('the ping magic is exactly the 16 bytes of ping.c and matches only at full length', () => {
  assert.deepEqual(Buffer.from(PING_MAGIC), hex('2a 18 7b f3 64 1e b4 cb 07 ed 2d 0a 98 1f c7 48'));
  const buf = Buffer.alloc(40);
  assert.equal(writePingMessage(buf, 7), 16);
  assert.equal(isPingMessage(buf, 7, 16), true);
  assert.equal(isPingMessage(buf, 7, 17), false, 'a longer payload is a tunnel packet');
  assert.equal(isPingMessage(buf, 7, 15), false);
  buf[22] ^= 1;
  assert.equal(isPingMessage(buf, 7, 16), false);
  assert.equal(payloadKind(hex('2a187bf3641eb4cb07ed2d0a981fc748'), 0, 16), 'ping');
  assert.equal(payloadKind(hex('4500001c'), 0, 4), 'packet');
});

test('OCC messages: magic, opcodes and bodies as occ.c writes them', () => {
  assert.deepEqual(Buffer.from(OCC_MAGIC), hex('28 7f 34 6b d4 ef 7a 81 2d 56 b8 d3 af c5 45 9c'));
  const magic = Buffer.from(OCC_MAGIC);
  assert.deepEqual(buildOccMessage({ op: 'exit' }), Buffer.concat([magic, hex('06')]));
  assert.deepEqual(buildOccMessage({ op: 'request' }), Buffer.concat([magic, hex('00')]));
  assert.deepEqual(buildOccMessage({ op: 'mtu-request' }), Buffer.concat([magic, hex('04')]));
  assert.deepEqual(buildOccMessage({ op: 'mtu-reply', maxRecv: 1500, maxSend: 0x1234 }), Buffer.concat([magic, hex('05 05dc 1234')]));
  assert.deepEqual(buildOccMessage({ op: 'mtu-load-request', size: 1400 }), Buffer.concat([magic, hex('02 0578')]));
  assert.deepEqual(
    buildOccMessage({ op: 'reply', options: 'V4,dev-type tun' }),
    Buffer.concat([magic, hex('01'), Buffer.from('V4,dev-type tun\0')]),
  );
  assert.equal(buildOccMessage({ op: 'mtu-load', length: 100 }).length, 117);

  const all: OccMessage[] = [
    { op: 'request' },
    {
      op: 'reply',
      options:
        'V4,dev-type tun,link-mtu 1559,tun-mtu 1500,proto UDPv4,cipher AES-256-GCM,auth [null-digest],keysize 256,key-method 2,tls-client',
    },
    { op: 'mtu-load-request', size: 1400 },
    { op: 'mtu-load', length: 12 },
    { op: 'mtu-request' },
    { op: 'mtu-reply', maxRecv: 1500, maxSend: 1450 },
    { op: 'exit' },
  ];
  for (const m of all) {
    const b = buildOccMessage(m);
    assert.equal(isOccMessage(b, 0, b.length), true);
    assert.equal(payloadKind(b, 0, b.length), 'occ');
    assert.deepEqual(parseOccMessage(b, 0, b.length), { ok: true, message: m });
  }
});

test('hostile OCC payloads give typed rejections', () => {
  const magic = Buffer.from(OCC_MAGIC);
  assert.deepEqual(parseOccMessage(magic, 0, 16), { ok: false, reason: 'truncated' });
  assert.deepEqual(parseOccMessage(Buffer.concat([magic, hex('05 05dc')]), 0, 19), { ok: false, reason: 'truncated' });
  assert.deepEqual(parseOccMessage(Buffer.concat([magic, hex('02 05')]), 0, 18), { ok: false, reason: 'truncated' });
  assert.deepEqual(parseOccMessage(Buffer.concat([magic, hex('07')]), 0, 17), { ok: false, reason: 'unknown-opcode' });
  assert.deepEqual(parseOccMessage(Buffer.concat([magic, hex('01 41 0a 42 00')]), 0, 21), { ok: false, reason: 'bad-options-string' });
  assert.deepEqual(parseOccMessage(hex('00'.repeat(17)), 0, 17), { ok: false, reason: 'not-occ' });
  // An options string without NUL is taken to the end of the payload.
  assert.deepEqual(parseOccMessage(Buffer.concat([magic, hex('01'), Buffer.from('V4')]), 0, 19), {
    ok: true,
    message: { op: 'reply', options: 'V4' },
  });
});

test('keepalive: ping after n s of send silence, ping-restart after m s of receive silence', () => {
  const t = new KeepaliveTimer({ pingS: 10, pingRestartS: 60 }, 0);
  assert.equal(t.nextDeadline(), 10_000);
  assert.equal(t.poll(9_999), 'none');
  assert.equal(t.poll(10_000), 'ping');
  assert.equal(t.poll(10_001), 'none', 'the ping counts as sent');
  t.sent(15_000); // data went out: the ping waits
  assert.equal(t.poll(20_000), 'none');
  assert.equal(t.nextDeadline(), 25_000);
  assert.equal(t.poll(25_000), 'ping');
  t.received(50_000);
  assert.equal(t.poll(109_999), 'ping');
  assert.equal(t.poll(110_000), 'ping-restart');

  // Pushed values replace the pre-pull 120 s and restart the receive clock.
  const c = new KeepaliveTimer({ pingS: 0, pingRestartS: 120 }, 0);
  assert.equal(c.poll(100_000), 'none');
  c.configure({ pingS: 10, pingRestartS: 60 }, 100_000);
  assert.equal(c.poll(159_999), 'ping');
  assert.equal(c.poll(160_000), 'ping-restart');

  const off = new KeepaliveTimer({ pingS: 0, pingRestartS: 0 }, 0);
  assert.equal(off.nextDeadline(), Infinity);
  assert.equal(off.poll(1e12), 'none');

  const exit = new KeepaliveTimer({ pingS: 0, pingRestartS: 60, pingExitS: 30 }, 0);
  assert.equal(exit.poll(30_000), 'ping-exit');
  assert.throws(() => new KeepaliveTimer({ pingS: -1, pingRestartS: 0 }, 0), RangeError);
});

test('the key method 2 options string: the UDP/AEAD string shardvpn has always sent, and TCP/CBC spellings', () => {
  const udp = { role: 'tls-server', transport: 'udp', tunMtu: 1500, cipher: 'AES-256-GCM', auth: null, keysize: 256 } as const;
  assert.equal(
    occOptionsString(udp),
    'V4,dev-type tun,link-mtu 1559,tun-mtu 1500,proto UDPv4,cipher AES-256-GCM,auth [null-digest],keysize 256,key-method 2,tls-server',
  );
  assert.equal(
    occOptionsString({ ...udp, role: 'tls-client', tunMtu: 1400, cipher: null }),
    'V4,dev-type tun,link-mtu 1559,tun-mtu 1400,proto UDPv4,auth [null-digest],keysize 256,key-method 2,tls-client',
  );
  assert.equal(
    occOptionsString({ ...udp, transport: 'tcp-server', cipher: 'AES-128-CBC', auth: 'SHA256', keysize: 128 }),
    'V4,dev-type tun,link-mtu 1559,tun-mtu 1500,proto TCPv4_SERVER,cipher AES-128-CBC,auth SHA256,keysize 128,key-method 2,tls-server',
  );
  assert.match(occOptionsString({ ...udp, role: 'tls-client', transport: 'tcp-client' }), /,proto TCPv4_CLIENT,.*,tls-client$/);
});

test('pingEarlyMs: a timer looked at once per 200 ms tick never leaves more than ping seconds between pings', () => {
  // ping 1 against a peer's ping-restart 2, counted in whole seconds: pings must not drift past 1 s.
  const ticked = (early: number): number => {
    const t = new KeepaliveTimer({ pingS: 1, pingRestartS: 0, pingEarlyMs: early }, 0);
    let last = 0;
    let widest = 0;
    // Ticks 200 ms apart with a little jitter, for 30 s; a tick only acts once the deadline passed.
    for (let now = 37; now < 30_000; now += 200 + (now % 7)) {
      if (now < t.nextDeadline()) continue;
      if (t.poll(now) === 'ping') {
        widest = Math.max(widest, now - last);
        last = now;
      }
    }
    return widest;
  };
  assert.ok(ticked(0) > 1000, 'without it the tick makes the gaps longer than ping');
  assert.ok(ticked(200) <= 1000, `with it: ${ticked(200)} ms`);
});

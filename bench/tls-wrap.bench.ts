// tls-auth wrap + unwrap of control packets on one core: the keyed OpenSSL HMAC contexts in the
// addon (what src/shared/protocol/tls-auth.ts uses, one per direction of a key, shared by every
// session) against a node:crypto HMAC object per packet (what it used before), and tls-crypt's
// keyed contexts for reference. Two packet sizes: an ACK-sized one and a full TLS record
// fragment. Contenders interleaved within every run, medians over BENCH_RUNS runs.
// Run: node dist/bench/tls-wrap.bench.js
import { createHmac, timingSafeEqual } from 'node:crypto';

import { PacketIdSend } from '../src/shared/protocol/packet-id';
import { generateStaticKey } from '../src/shared/protocol/static-key';
import { tlsAuthKeys, tlsAuthUnwrap, tlsAuthWrap, type TlsAuthKeys } from '../src/shared/protocol/tls-auth';
import { tlsCryptKeys, tlsCryptUnwrap, tlsCryptWrap } from '../src/shared/protocol/tls-crypt';
import { batchRate, benchRuns, formatRate, median, printTable } from './lib';

const MEASURE_MS = Number(process.env.BENCH_MS ?? '400');
const SIZES = [30, 1200];
const NOW = 1_700_000_000_000;
const H_PID = 8;

/** The previous tls-auth code: a node:crypto HMAC object per packet over the swapped layout. */
function nodeHmac(keys: TlsAuthKeys, key: Buffer, wire: Buffer): Buffer {
  const h = keys.hmacSize;
  return createHmac(keys.digest, key)
    .update(wire.subarray(9 + h, 9 + h + H_PID))
    .update(wire.subarray(0, 9))
    .update(wire.subarray(9 + h + H_PID))
    .digest();
}

function nodeWrap(keys: TlsAuthKeys, send: PacketIdSend, plain: Buffer): Buffer {
  const h = keys.hmacSize;
  const pid = send.next(NOW)!;
  const out = Buffer.allocUnsafe(plain.length + h + H_PID);
  plain.copy(out, 0, 0, 9);
  out.writeUInt32BE(pid.id >>> 0, 9 + h);
  out.writeUInt32BE(pid.time >>> 0, 9 + h + 4);
  plain.copy(out, 9 + h + H_PID, 9);
  nodeHmac(keys, keys.encryptKey, out).copy(out, 9);
  return out;
}

function nodeUnwrapOk(keys: TlsAuthKeys, wire: Buffer): boolean {
  return timingSafeEqual(nodeHmac(keys, keys.decryptKey, wire), wire.subarray(9, 9 + keys.hmacSize));
}

function main(): void {
  const runs = benchRuns();
  const rows: string[][] = [];
  for (const size of SIZES) {
    const plain = Buffer.alloc(size, 0x5a);
    plain[0] = 4 << 3; // P_CONTROL_V1
    const contenders: [string, () => void][] = [];
    for (const digest of ['SHA1', 'SHA256']) {
      const key = generateStaticKey();
      const keys = tlsAuthKeys(key, 'bidirectional', digest);
      const send = new PacketIdSend(true, 0);
      contenders.push([
        `tls-auth ${digest}, addon`,
        () => {
          const wire = tlsAuthWrap(keys, send, plain, NOW)!;
          if (!tlsAuthUnwrap(keys, null, wire).ok) throw new Error('unwrap failed');
        },
      ]);
      const nodeSend = new PacketIdSend(true, 0);
      contenders.push([
        `tls-auth ${digest}, node:crypto per packet`,
        () => {
          if (!nodeUnwrapOk(keys, nodeWrap(keys, nodeSend, plain))) throw new Error('unwrap failed');
        },
      ]);
    }
    const crypt = generateStaticKey();
    const client = tlsCryptKeys(crypt, 'client');
    const server = tlsCryptKeys(crypt, 'server');
    const cryptSend = new PacketIdSend(true, 0);
    contenders.push([
      'tls-crypt, addon',
      () => {
        if (!tlsCryptUnwrap(server, null, tlsCryptWrap(client, cryptSend, plain, NOW)!).ok) throw new Error('unwrap failed');
      },
    ]);
    const rates = new Map<string, number[]>(contenders.map(([name]) => [name, []]));
    for (const [, step] of contenders) batchRate(step, 1, 50);
    for (let run = 0; run < runs; run++) {
      const order = run % 2 === 0 ? contenders : [...contenders].reverse();
      for (const [name, step] of order) rates.get(name)!.push(batchRate(step, 1, MEASURE_MS));
    }
    for (const digest of ['SHA1', 'SHA256']) {
      const addon = median(rates.get(`tls-auth ${digest}, addon`)!);
      const node = median(rates.get(`tls-auth ${digest}, node:crypto per packet`)!);
      rows.push([String(size), `tls-auth ${digest}`, formatRate(addon), formatRate(node), `${(addon / node).toFixed(2)}x`]);
    }
    rows.push([String(size), 'tls-crypt (addon)', formatRate(median(rates.get('tls-crypt, addon')!)), '-', '-']);
  }
  printTable(
    `Control-packet wrap + unwrap per second, one core (median of ${runs} runs of ${MEASURE_MS} ms)`,
    ['bytes', 'wrap', 'addon (keyed contexts)', 'node:crypto HMAC per packet', 'addon / node:crypto'],
    rows,
  );
}

main();

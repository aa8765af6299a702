// `shardvpn --test-crypto`: each data cipher seals and opens a batch of packets both ways with
// fresh keys, refuses a replay, a tampered packet and the wrong key, and prints a result.
import { randomBytes } from 'node:crypto';

import { PacketBatch } from '../../shared/native';
import { DataChannelKey, DecryptResults } from '../../shared/protocol/data-channel';
import { cipherUnavailable, type DataCipherName } from '../../shared/protocol/data-format';
import { DATA_CIPHERS } from '../../shared/protocol/ncp';

const COUNT = 16;
const SLOT = 2048;

/** Checks one cipher; returns null when it works, else what failed. */
export function testCipher(cipher: DataCipherName): string | null {
  const block = randomBytes(256);
  const client = DataChannelKey.fromKeyBlock(block, 'client', cipher, 1, { peerId: 7 });
  const server = DataChannelKey.fromKeyBlock(block, 'server', cipher, 1, { peerId: 7 });
  const other = DataChannelKey.fromKeyBlock(randomBytes(256), 'server', cipher, 1, { peerId: 7 });
  try {
    const batch = PacketBatch.allocate(COUNT, SLOT);
    const plain: Buffer[] = [];
    for (let i = 0; i < COUNT; i++) {
      const p = randomBytes(1 + ((i * 97) % 1500));
      plain.push(p);
      batch.memory.set(p, batch.offsets[i]! + client.headroom);
      batch.lengths[i] = p.length;
    }
    if (client.encrypt(batch, COUNT) !== COUNT) return 'encrypt sealed fewer packets than given';
    const wire = Array.from({ length: COUNT }, (_, i) => Buffer.from(batch.packet(i)));
    const results = new DecryptResults(COUNT);
    const load = (): void => {
      for (let i = 0; i < COUNT; i++) batch.set(i, wire[i]!);
    };
    load();
    if (other.decrypt(batch, COUNT, Date.now(), results) !== 0) return 'a key from another key block opened packets';
    load();
    const last = batch.offsets[COUNT - 1]! + batch.lengths[COUNT - 1]! - 1;
    batch.memory[last] = batch.memory[last]! ^ 1;
    const accepted = server.decrypt(batch, COUNT, Date.now(), results);
    if (accepted !== COUNT - 1 || results.reason(COUNT - 1) !== 'bad-tag') return 'a tampered packet was not refused';
    for (let i = 0; i < COUNT - 1; i++) {
      const got = Buffer.from(batch.memory.subarray(results.payloadOffsets[i]!, results.payloadOffsets[i]! + results.payloadLengths[i]!));
      if (!got.equals(plain[i]!)) return `packet ${i} did not decrypt to what was sealed`;
    }
    load();
    const again = server.decrypt(batch, COUNT - 1, Date.now(), results);
    if (again !== 0 || results.reason(0) !== 'replay') return 'replayed packets were accepted';
    // And back the other way.
    batch.memory.set(plain[0]!, batch.offsets[0]! + client.headroom);
    batch.lengths[0] = plain[0]!.length;
    if (server.encrypt(batch, 1) !== 1 || client.decrypt(batch, 1, Date.now(), results) !== 1)
      return 'server-to-client packet did not open';
    return null;
  } finally {
    client.destroy();
    server.destroy();
    other.destroy();
  }
}

/** Runs every cipher, prints one line each; returns the exit status. */
export function runTestCrypto(write: (line: string) => void = (line) => process.stdout.write(line + '\n')): number {
  let failed = 0;
  // BF-CBC only where this OpenSSL can run it (the legacy provider).
  for (const cipher of DATA_CIPHERS.filter((c) => cipherUnavailable(c) === null)) {
    let result: string | null;
    try {
      result = testCipher(cipher);
    } catch (error) {
      result = (error as Error).message;
    }
    if (result === null) write(`Data channel cipher ${cipher}: encrypt/decrypt, tamper, wrong key and replay checks OK`);
    else {
      failed++;
      write(`Data channel cipher ${cipher}: FAILED: ${result}`);
    }
  }
  write(failed === 0 ? 'Crypto self-test OK' : `Crypto self-test FAILED (${failed} cipher(s))`);
  return failed === 0 ? 0 : 1;
}

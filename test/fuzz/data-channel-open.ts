// The data channel's open path (data-channel.ts and the addon's aead.cc / cbc.cc) with fixed keys:
// a batch of packets made from the input, some raw attacker bytes, some sealed by the peer's key
// from the input's bytes (some then changed), opened in one call. Every packet gets a typed
// verdict, every refusal is counted, sealed packets open to their payload, and with an
// authenticating cipher no changed or made-up packet is accepted.
import { PacketBatch } from '../../src/shared/native';
import { DATA_DROP_REASONS, DataChannelKey, DecryptResults } from '../../src/shared/protocol/data-channel';
import { isCbcCipher } from '../../src/shared/protocol/data-format';
import type { DataCipherName } from '../../src/shared/protocol/data-format';
import { KEY_BLOCK_SIZE } from '../../src/shared/protocol/key-derivation';
import { Finding, parts } from './finding';

export interface Suite {
  readonly cipher: DataCipherName;
  /** The CBC `auth` digest; null is `auth none`, where nothing is authenticated. */
  readonly auth?: string | null;
}

const CAPACITY = 2048;
const BLOCK = Buffer.from(Array.from({ length: KEY_BLOCK_SIZE }, (_, i) => (i * 29 + 5) & 0xff));

function keys(suite: Suite, v2: boolean): { send: DataChannelKey; recv: DataChannelKey } {
  const options = { ...(suite.auth !== undefined ? { auth: suite.auth } : {}), peerId: v2 ? 0x0a0b0c : null };
  return {
    send: DataChannelKey.fromKeyBlock(BLOCK, 'client', suite.cipher, 0, options),
    recv: DataChannelKey.fromKeyBlock(BLOCK, 'server', suite.cipher, 0, options),
  };
}

interface Made {
  /** The payload a sealed, unchanged packet must open to; null for raw or changed packets. */
  readonly payload: Buffer | null;
}

export function openBatch(suite: Suite, data: Buffer): void {
  const authenticated = suite.auth !== null;
  const v2 = ((data[0] ?? 0) & 0x10) !== 0;
  const { send, recv } = keys(suite, v2);
  const list = parts(data.subarray(1), 16);
  const batch = PacketBatch.allocate(list.length, CAPACITY);
  const made: Made[] = [];
  for (let i = 0; i < list.length; i++) {
    const part = list[i]!.subarray(0, CAPACITY - 64);
    const mode = part[0] ?? 0;
    if ((mode & 3) === 0) {
      // Raw bytes, as an attacker sends them.
      batch.set(i, part);
      made.push({ payload: null });
      continue;
    }
    const payload = part.subarray(1);
    const one = PacketBatch.allocate(1, CAPACITY);
    one.memory.set(payload, one.offsets[0]! + send.headroom);
    one.lengths[0] = payload.length;
    if (send.encrypt(one, 1) !== 1) throw new Finding('encrypt refused a fresh packet');
    const wire = Buffer.from(one.packet(0));
    if ((mode & 3) === 3 && wire.length > 0) {
      // Changed after sealing: a bit flipped, or cut short.
      const at = (mode >> 3) % wire.length;
      if (mode & 4) wire[at]! ^= 1 << (mode & 7);
      batch.set(i, mode & 4 ? wire : wire.subarray(0, at));
      // As in OpenVPN, CBC's HMAC does not cover the P_DATA_V2 peer-id (the receiver chose this
      // key by it); AEAD authenticates it as associated data.
      const unauthenticated = mode & 4 && isCbcCipher(suite.cipher) && v2 && at >= 1 && at <= 3;
      made.push({ payload: unauthenticated ? Buffer.from(payload) : null });
    } else {
      batch.set(i, wire);
      // An AEAD packet with no ciphertext is refused ('short'), as openvpn_decrypt_aead refuses a
      // missing payload, though our sender would seal it.
      const refused = payload.length === 0 && !isCbcCipher(suite.cipher);
      made.push({ payload: refused ? null : Buffer.from(payload) });
    }
  }
  const lengths = Array.from(batch.lengths.subarray(0, list.length));
  const results = new DecryptResults(list.length);
  const drops = recv.counters.drops;
  const before = DATA_DROP_REASONS.reduce((n, r) => n + drops[r], 0);
  const accepted = recv.decrypt(batch, list.length, 1000, results);
  const dropped = DATA_DROP_REASONS.reduce((n, r) => n + drops[r], 0) - before;
  if (accepted + dropped !== list.length)
    throw new Finding(`decrypt: ${accepted} accepted + ${dropped} counted drops for ${list.length} packets`);
  let ok = 0;
  for (let i = 0; i < list.length; i++) {
    if (results.ok(i)) {
      ok++;
      const off = results.payloadOffsets[i]!;
      const len = results.payloadLengths[i]!;
      const start = batch.offsets[i]!;
      if (off < start || off + len > start + lengths[i]!) throw new Finding(`decrypt: payload ${off}+${len} outside packet ${i}`);
      const want = made[i]!.payload;
      if (want !== null && !want.equals(Buffer.from(batch.memory.subarray(off, off + len))))
        throw new Finding(`decrypt: packet ${i} opened to other bytes`);
      if (want === null && authenticated)
        throw new Finding(`decrypt: accepted a ${(list[i]![0] ?? 0) & 3 ? 'changed' : 'made-up'} packet ${i}`);
    } else {
      const reason = results.reason(i);
      if (reason === null || !DATA_DROP_REASONS.includes(reason)) throw new Finding(`decrypt: untyped status ${results.status[i]}`);
      // Without authentication a changed packet opens to a made-up packet-id, which may move the
      // replay window past the authentic ones after it.
      if (made[i]!.payload !== null && (authenticated || reason !== 'replay'))
        throw new Finding(`decrypt: refused an authentic packet ${i} (${reason})`);
    }
  }
  if (ok !== accepted) throw new Finding(`decrypt returned ${accepted} but ${ok} packets are marked ok`);
  send.destroy();
  recv.destroy();
}

// What a data packet's payload may be besides an IP packet: OpenVPN's ping and OCC messages
// (ping.ts, occ.ts), under each compression framing (compress-framing.ts), as the shard and the
// client link check them after decryption. Refusals are typed; an OCC message that parses builds
// back to the same message.
import { isDeepStrictEqual } from 'node:util';
import { buildOccMessage, isOccMessage, parseOccMessage, payloadKind } from '../../../src/shared/protocol/occ';
import { isPingMessage } from '../../../src/shared/protocol/ping';
import { CompressFramer } from '../../../src/shared/protocol/compress-framing';
import type { FramingKind } from '../../../src/shared/protocol/compress-framing';
import { Finding, refusing, typed } from '../finding';

const REJECTS = ['not-occ', 'truncated', 'unknown-opcode', 'bad-options-string'];
const FRAMINGS: readonly FramingKind[] = ['none', 'prefix', 'swap', 'v2'];
const UNFRAMED = ['ok', 'compressed', 'bad'];

function payload(memory: Uint8Array, offset: number, length: number): void {
  const kind = payloadKind(memory, offset, length);
  if (kind !== 'ping' && kind !== 'occ' && kind !== 'packet') throw new Finding(`payloadKind: ${String(kind)}`);
  if ((kind === 'ping') !== isPingMessage(memory, offset, length)) throw new Finding('payloadKind and isPingMessage disagree');
  if ((kind === 'occ') !== isOccMessage(memory, offset, length)) throw new Finding('payloadKind and isOccMessage disagree');
  const r = parseOccMessage(memory, offset, length);
  typed(r, REJECTS, 'parseOccMessage');
  if (!r.ok) return;
  // Our builder refuses an options string over its limit; a parsed one may be longer.
  const wire = refusing(
    () => buildOccMessage(r.message),
    (e) => e instanceof Error && !(e instanceof TypeError),
  );
  if (wire === undefined) return;
  const again = parseOccMessage(wire, 0, wire.length);
  if (!again.ok || !isDeepStrictEqual(again.message, r.message)) throw new Finding('OCC message changes when rebuilt');
}

export function fuzz(data: Buffer): void {
  for (const kind of FRAMINGS) {
    const memory = Buffer.concat([Buffer.alloc(3, 0xee), data, Buffer.alloc(3, 0xee)]);
    const framer = new CompressFramer(kind);
    const v = framer.unframe(memory, 3, data.length);
    if (!UNFRAMED.includes(v)) throw new Finding(`CompressFramer.unframe: ${String(v)}`);
    if (v !== 'ok') continue;
    if (framer.start < 3 || framer.length < 0 || framer.start + framer.length > 3 + data.length) {
      throw new Finding(`CompressFramer.unframe(${kind}): payload ${framer.start}+${framer.length} outside the packet`);
    }
    payload(memory, framer.start, framer.length);
  }
}

// The packet codec (packet.ts): every parser of an outside datagram returns a typed ParseResult,
// and a control packet that parses builds back into the same bytes.
import { isDeepStrictEqual } from 'node:util';
import {
  buildControlPacket,
  classifyPacket,
  parseControlBody,
  parseControlHeader,
  parseControlPacket,
  parseDataHeader,
  parseEarlyNegotiation,
  PARSE_REJECTS,
  splitWrappedClientKey,
} from '../../../src/shared/protocol/packet';
import type { ParseReject } from '../../../src/shared/protocol/packet';
import { CONTROL_OPCODES } from '../../../src/shared/protocol/opcodes';
import { Finding, typed } from '../finding';

const REJECTS: readonly ParseReject[] = PARSE_REJECTS;

export function fuzz(data: Buffer): void {
  typed(classifyPacket(data), REJECTS, 'classifyPacket');
  typed(parseControlHeader(data), REJECTS, 'parseControlHeader');
  typed(parseDataHeader(data), REJECTS, 'parseDataHeader');
  typed(splitWrappedClientKey(data), REJECTS, 'splitWrappedClientKey');
  typed(parseEarlyNegotiation(data), REJECTS, 'parseEarlyNegotiation');
  for (const op of CONTROL_OPCODES) typed(parseControlBody(op, data), REJECTS, `parseControlBody(${op})`);
  const p = parseControlPacket(data);
  typed(p, REJECTS, 'parseControlPacket');
  if (!p.ok) return;
  // Not every accepted packet is canonical (a P_ACK_V1 may carry trailing bytes OpenVPN ignores),
  // but what the codec builds from a parse must parse back to the same packet.
  const again = parseControlPacket(buildControlPacket(p.value));
  if (!again.ok || !isDeepStrictEqual(again.value, p.value)) throw new Finding('parseControlPacket: a parsed packet does not round-trip');
}

// OpenVPN's packet framing over TCP (stream-framing.ts): a byte stream cut anywhere gives the same
// packets as the whole stream, each 1..maxPacket bytes, or stops at the first bad length word with
// a typed error; a partial packet holds at most maxPacket bytes.
import { StreamDeframer } from '../../../src/shared/protocol/stream-framing';
import { Finding } from '../finding';

const MAX_PACKET = 1600;

function deframe(chunks: readonly Uint8Array[]): { packets: string[]; error: string | null } {
  const d = new StreamDeframer(MAX_PACKET);
  const packets: string[] = [];
  for (const c of chunks) {
    const ok = d.push(c, (bytes) => {
      if (bytes.length === 0 || bytes.length > MAX_PACKET) throw new Finding(`StreamDeframer: ${bytes.length}-byte packet`);
      packets.push(Buffer.from(bytes).toString('hex'));
    });
    if (ok !== (d.error === null)) throw new Finding('StreamDeframer: push result and error disagree');
    if (d.buffered > MAX_PACKET + 2) throw new Finding(`StreamDeframer: ${d.buffered} bytes buffered`);
    if (!ok) break;
  }
  if (d.error !== null && d.error !== 'zero-length' && d.error !== 'too-long')
    throw new Finding(`StreamDeframer: error ${String(d.error)}`);
  return { packets, error: d.error };
}

export function fuzz(data: Buffer): void {
  const whole = deframe([data]);
  // Cut the stream at points the input chooses (its first bytes), and byte by byte for short inputs.
  const cuts = [...data.subarray(0, 4)].map((b) => (data.length === 0 ? 0 : (b * 7) % data.length)).sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const c of cuts) {
    chunks.push(data.subarray(from, c));
    from = c;
  }
  chunks.push(data.subarray(from));
  const cut = deframe(chunks);
  if (JSON.stringify(cut) !== JSON.stringify(whole)) throw new Finding('StreamDeframer: packets depend on how the stream was cut');
  if (data.length <= 64) {
    const bytes = deframe([...data].map((b) => Uint8Array.of(b)));
    if (JSON.stringify(bytes) !== JSON.stringify(whole)) throw new Finding('StreamDeframer: byte-by-byte stream differs');
  }
}

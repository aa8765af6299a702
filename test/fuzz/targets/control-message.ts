// Control-channel messages (control-message.ts): the TLS plaintext stream split into NUL-ended
// messages in any chunking, each classified by parseControlMessage, which never throws. Messages
// are printable ASCII, at most TLS_CHANNEL_BUF_SIZE long, and the same whichever way the stream
// was cut.
import {
  ControlMessageReader,
  TLS_CHANNEL_BUF_SIZE,
  formatControlMessage,
  parseControlMessage,
} from '../../../src/shared/protocol/control-message';
import { Finding } from '../finding';

function read(chunks: readonly Uint8Array[]): string[] {
  const r = new ControlMessageReader();
  return chunks.flatMap((c) => r.push(c));
}

export function fuzz(data: Buffer): void {
  const cut = data.length === 0 ? 0 : data[0]! % data.length;
  const whole = read([data]);
  const split = read([data.subarray(0, cut), data.subarray(cut)]);
  if (JSON.stringify(whole) !== JSON.stringify(split)) throw new Finding('ControlMessageReader: messages depend on how the stream was cut');
  for (const m of whole) {
    if (m.length === 0 || m.length > TLS_CHANNEL_BUF_SIZE || !/^[\x20-\x7e]+$/.test(m))
      throw new Finding(`ControlMessageReader: message ${JSON.stringify(m)}`);
    const msg = parseControlMessage(m);
    if (typeof msg.kind !== 'string') throw new Finding('parseControlMessage: no kind');
    formatControlMessage(msg);
  }
  // Text that never came through the reader (management and tests hand strings in directly).
  parseControlMessage(data.toString('latin1'));
}

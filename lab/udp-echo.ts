// UDP through a tunnel, checked datagram by datagram, for tests.
//   node udp-echo.js echo ADDRESS PORT
//     echoes every datagram to its sender (exits after 120 s)
//   node udp-echo.js send ADDRESS PORT SIZES BURST ROUNDS
//     for each size of the comma list, ROUNDS bursts of BURST datagrams sent back to back (runs of
//     equal datagrams, as a batch from TUN carries them); each burst waits for its echoes, sends the
//     missing ones again (up to 5 times, 1 s apart), and compares every echo byte for byte with
//     what was sent. Prints {sent, echoed, corrupt, resent, missing, bytes} and exits.
import { createHash } from 'node:crypto';
import dgram from 'node:dgram';

const [mode, address, portText, sizesText, burstText, roundsText] = process.argv.slice(2);
const port = Number(portText);
const family = address?.includes(':') ? 'udp6' : 'udp4';

/** The datagram `index` of size `size`: a 12-byte header (size, index) and bytes derived from it. */
function datagram(size: number, index: number): Buffer {
  const out = Buffer.alloc(size);
  const header = Buffer.alloc(12);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(index, 4);
  header.writeUInt32BE(0x5eed0000 ^ size, 8);
  let block = createHash('sha256').update(header).digest();
  for (let at = 0; at < size; at += block.length) {
    block.copy(out, at);
    block = createHash('sha256').update(block).digest();
  }
  header.copy(out, 0, 0, Math.min(12, size));
  return out;
}

if (mode === 'echo') {
  const socket = dgram.createSocket(family);
  socket.on('message', (message, from) => socket.send(message, from.port, from.address));
  socket.bind(port, address, () => console.log('listening'));
  setTimeout(() => process.exit(2), 120_000).unref();
} else if (mode === 'send') {
  const sizes = (sizesText ?? '').split(',').map(Number);
  const burst = Number(burstText);
  const rounds = Number(roundsText);
  const socket = dgram.createSocket(family);
  const totals = { sent: 0, echoed: 0, corrupt: 0, resent: 0, missing: 0, bytes: 0 };
  let waiting = new Map<number, Buffer>();
  let wake: (() => void) | null = null;
  socket.on('message', (message) => {
    // Datagrams of 12 bytes and more name themselves; shorter ones are matched by their bytes.
    const key = message.length >= 12 ? message.readUInt32BE(4) : [...waiting].find(([, b]) => b.equals(message))?.[0];
    const expected = key === undefined ? undefined : waiting.get(key);
    if (expected === undefined) {
      // An echo of a datagram sent again: counted once already, unless its bytes are wrong.
      if (message.length >= 12 && !message.equals(datagram(message.readUInt32BE(0), message.readUInt32BE(4)))) totals.corrupt++;
      return;
    }
    if (!expected.equals(message)) {
      totals.corrupt++;
      return;
    }
    waiting.delete(key!);
    totals.echoed++;
    totals.bytes += message.length;
    if (waiting.size === 0) wake?.();
  });
  const run = async (): Promise<void> => {
    let index = 0;
    for (const size of sizes) {
      for (let r = 0; r < rounds; r++) {
        waiting = new Map();
        for (let i = 0; i < burst; i++) waiting.set(index, datagram(size, index++));
        for (let attempt = 0; attempt <= 5 && waiting.size > 0; attempt++) {
          const pending = [...waiting.values()];
          if (attempt > 0) totals.resent += pending.length;
          else totals.sent += pending.length;
          for (const d of pending) socket.send(d, port, address);
          await new Promise<void>((resolve) => {
            wake = resolve;
            setTimeout(resolve, 1000);
          });
        }
        totals.missing += waiting.size;
      }
    }
  };
  socket.bind(0, () => {
    run().then(
      () => {
        console.log(JSON.stringify(totals));
        socket.close();
      },
      (error: unknown) => {
        console.error(error);
        process.exit(1);
      },
    );
  });
  setTimeout(() => process.exit(3), 100_000).unref();
}

// UDP receive on loopback: the addon's recvmmsg batch path against node:dgram in the same run.
// A sender on one core cannot outrun either receiver on this 2-core machine, so the benchmark
// measures the receive path alone: the sender queues a burst of 1400-byte datagrams in the
// receiver's socket buffer while the event loop is held, then the receiver drains the queue and
// the drain rate (datagrams received / time to the last one) is compared.
import dgram from 'node:dgram';

import { PacketBatch, PeerAddresses, POLL_READABLE, UdpSocket } from '../src/shared/native';
import { benchRuns, formatRate, median, printTable } from './lib';

const SIZE = 1400;
const BURST = 2000;
const CYCLES = 40;
const RCVBUF = 8 << 20;

interface Receiver {
  port: number;
  /** Resolves with the seconds from now until the burst's last datagram, and how many came. */
  drain(expected: number): Promise<{ seconds: number; received: number }>;
  close(): void;
}

function drainWatcher(onCount: (cb: (n: number) => void) => void, expected: number): Promise<{ seconds: number; received: number }> {
  const started = process.hrtime.bigint();
  let received = 0;
  let last = started;
  return new Promise((resolve) => {
    // Some datagrams of a burst can be dropped by the kernel: stop after 50 ms of silence.
    let idle = setTimeout(finish, 200);
    function finish(): void {
      resolve({ seconds: Number(last - started) / 1e9, received });
    }
    onCount((n) => {
      received += n;
      last = process.hrtime.bigint();
      if (received >= expected) {
        clearTimeout(idle);
        finish();
      } else {
        clearTimeout(idle);
        idle = setTimeout(finish, 50);
      }
    });
  });
}

function addonReceiver(): Receiver {
  const socket = UdpSocket.open({ family: 4, address: '127.0.0.1', port: 0, rcvbuf: RCVBUF });
  const batch = PacketBatch.allocate(64, 2048);
  const from = new PeerAddresses(64);
  return {
    port: socket.localAddress().port,
    drain(expected) {
      return drainWatcher((count) => {
        socket.poll(POLL_READABLE, () => {
          let total = 0;
          for (;;) {
            const n = socket.recv(batch, from);
            total += n;
            if (n < 64) break;
          }
          count(total);
        });
      }, expected).finally(() => socket.stopPoll());
    },
    close: () => socket.close(),
  };
}

async function dgramReceiver(): Promise<Receiver> {
  const socket = dgram.createSocket({ type: 'udp4', recvBufferSize: RCVBUF });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  let handler: ((n: number) => void) | null = null;
  socket.on('message', () => handler?.(1));
  return {
    port: socket.address().port,
    drain(expected) {
      return drainWatcher((count) => {
        handler = count;
      }, expected).finally(() => {
        handler = null;
      });
    },
    close: () => socket.close(),
  };
}

/** Queues BURST datagrams in the receiver's buffer (synchronously: the loop cannot drain meanwhile). */
function sendBurst(sender: UdpSocket, batch: PacketBatch, to: PeerAddresses): number {
  let sent = 0;
  while (sent < BURST) {
    const n = sender.send(batch, to, Math.min(32, BURST - sent));
    if (n === 0) break;
    sent += n;
  }
  return sent;
}

async function measure(receiver: Receiver): Promise<number> {
  const sender = UdpSocket.open({ family: 4, address: '127.0.0.1', port: 0, sndbuf: RCVBUF });
  const batch = PacketBatch.allocate(32, SIZE);
  const to = new PeerAddresses(32);
  for (let i = 0; i < 32; i++) {
    batch.lengths[i] = SIZE;
    to.set(i, { family: 4, address: '127.0.0.1', port: receiver.port });
  }
  let received = 0;
  let seconds = 0;
  for (let c = 0; c < CYCLES; c++) {
    const sent = sendBurst(sender, batch, to);
    const result = await receiver.drain(sent);
    received += result.received;
    seconds += result.seconds;
  }
  sender.close();
  return received / seconds;
}

async function main(): Promise<void> {
  const runs = benchRuns();
  const addon: number[] = [];
  const node: number[] = [];
  for (let i = 0; i < runs; i++) {
    // Interleave the contenders so both see the same machine noise.
    const a = addonReceiver();
    addon.push(await measure(a));
    a.close();
    const d = await dgramReceiver();
    node.push(await measure(d));
    d.close();
  }
  const a = median(addon);
  const d = median(node);
  printTable(
    `UDP receive (drain of queued ${SIZE}-byte datagrams on loopback), median of ${runs} runs x ${CYCLES} bursts of ${BURST}`,
    ['receiver', 'datagrams/s', 'ratio'],
    [
      ['addon recvmmsg, batch 64', formatRate(a), (a / d).toFixed(2) + 'x'],
      ['node:dgram', formatRate(d), '1.00x'],
    ],
  );
  console.log(`target: addon >= 3x node:dgram -> ${a / d >= 3 ? 'met' : 'missed'}`);
}

void main();

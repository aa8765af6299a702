// In-memory packet devices for tests (LinkIO, TunIO of src/shared/io.ts): a whole shard, the
// TUN pump or the client link runs over them without a socket, a TUN device or root.
// Readiness is level-triggered like the native poller, but driven by the test: deliver() /
// inject() queue packets and call the readable callback at once, so anything the code under
// test throws surfaces in the test's own call.
import type { LinkIO, TunIO } from '../../src/shared/io';
import type { PacketBatch, PeerAddress, PeerAddresses } from '../../src/shared/native';

export interface Datagram {
  bytes: Buffer;
  /** Sender (inbox) or destination (outbox). */
  peer: PeerAddress;
}

/** Calls of the readable callback per deliver/inject, as a bound on a reader that never drains. */
const MAX_ROUNDS = 1000;

class FakeDevice {
  closed = false;
  protected readable: ((events: number) => void) | null = null;

  poll(_events: number, callback: (events: number) => void): void {
    this.readable = callback;
  }

  stopPoll(): void {
    this.readable = null;
  }

  close(): void {
    this.closed = true;
    this.readable = null;
  }

  /** Calls the readable callback while `pending()` says there is something to read. */
  protected signal(pending: () => boolean): void {
    for (let round = 0; round < MAX_ROUNDS && pending() && this.readable !== null; round++) this.readable(1);
  }
}

/** A UDP socket: `inbox` is what it will receive, `outbox` what was sent through it. */
export class FakeLink extends FakeDevice implements LinkIO {
  readonly inbox: Datagram[] = [];
  readonly outbox: Datagram[] = [];
  /** Datagrams taken per send call; fewer than asked emulates a full socket buffer. */
  sendLimit = Infinity;

  /** Queues datagrams, all from `peer`, as one receive batch (if they fit), and signals readiness. */
  deliver(peer: PeerAddress, ...datagrams: Uint8Array[]): void {
    for (const bytes of datagrams) this.inbox.push({ bytes: Buffer.from(bytes), peer });
    this.signal(() => this.inbox.length > 0);
  }

  recv(batch: PacketBatch, from: PeerAddresses): number {
    const n = Math.min(this.inbox.length, batch.size);
    for (let i = 0; i < n; i++) {
      const datagram = this.inbox.shift()!;
      batch.set(i, datagram.bytes);
      from.set(i, datagram.peer);
    }
    return n;
  }

  send(batch: PacketBatch, to: PeerAddresses, count: number): number {
    const n = Math.min(count, this.sendLimit);
    for (let i = 0; i < n; i++) this.outbox.push({ bytes: Buffer.from(batch.packet(i)), peer: to.get(i) });
    return n;
  }

  /** Takes everything sent so far. */
  takeSent(): Datagram[] {
    return this.outbox.splice(0);
  }
}

/** A TUN device: `toRead` holds what the kernel has for the reader, `written` what was written. */
export class FakeTun extends FakeDevice implements TunIO {
  readonly toRead: Buffer[] = [];
  readonly written: Buffer[] = [];
  /** Packets taken per write call; fewer emulates a full device queue. */
  writeLimit = Infinity;

  /** Queues packets for the reader and signals readiness. */
  inject(...packets: Uint8Array[]): void {
    for (const packet of packets) this.toRead.push(Buffer.from(packet));
    this.signal(() => this.toRead.length > 0);
  }

  read(batch: PacketBatch): number {
    const n = Math.min(this.toRead.length, batch.size);
    for (let i = 0; i < n; i++) batch.set(i, this.toRead.shift()!);
    return n;
  }

  write(batch: PacketBatch, count: number): number {
    const n = Math.min(count, this.writeLimit);
    for (let i = 0; i < n; i++) this.written.push(Buffer.from(batch.packet(i)));
    return n;
  }
}

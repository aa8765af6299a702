// A bulk-mode simulated client's link (--bandwidth): a native UDP socket bound to an ephemeral
// port, polled for readability in this worker's own event loop, received with recvmmsg and sent
// with sendmmsg. Control and data share the socket, so the server sees one address per client.
// The batches live in BulkBuffers, shared by every client of a worker: the loop is single-threaded
// and each batch is used and done with inside one synchronous call.
import { PacketBatch, PeerAddresses, POLL_READABLE, UdpSocket } from '../../shared/native';
import { MAX_DATA_HEADROOM, MAX_DATA_TAILROOM } from '../../shared/protocol/data-channel';
import type { LoadLink, LoadLinkEvents, LoadLinkTarget } from './load-link';

/** Packets per recvmmsg / sendmmsg. */
export const BULK_BATCH = 64;
/** Slot size: a 1500-byte inner packet with the data channel's headroom and tailroom. */
const SLOT = 1500 + MAX_DATA_HEADROOM + MAX_DATA_TAILROOM + 64;
/** Receive batches drained per readiness callback, so one busy client cannot starve the others. */
const RECV_ROUNDS = 4;
/** Socket buffers asked for (the kernel caps them at rmem_max / wmem_max). */
const SOCKET_BUFFER = 1 << 20;

export class BulkBuffers {
  readonly rx = PacketBatch.allocate(BULK_BATCH, SLOT);
  readonly from = new PeerAddresses(BULK_BATCH);
  readonly tx = PacketBatch.allocate(BULK_BATCH, SLOT);
  readonly to = new PeerAddresses(BULK_BATCH);
  readonly one = PacketBatch.allocate(1, SLOT);
  readonly oneTo = new PeerAddresses(1);

  constructor(target: LoadLinkTarget) {
    const server = { family: target.family, address: target.address, port: target.port };
    for (let i = 0; i < BULK_BATCH; i++) this.to.set(i, server);
    this.oneTo.set(0, server);
  }
}

export interface BulkLinkEvents extends LoadLinkEvents {
  /** `count` datagrams from the server are in buffers.rx. */
  receiveBatch(count: number): void;
}

export class BulkLink implements LoadLink {
  readonly closed = Promise.resolve();
  private readonly socket: UdpSocket;
  private isClosed = false;

  constructor(
    target: LoadLinkTarget,
    private readonly buffers: BulkBuffers,
    private readonly events: BulkLinkEvents,
    /** The address to send from; undefined: any. */
    local?: string,
  ) {
    this.socket = UdpSocket.open({
      family: target.family,
      rcvbuf: SOCKET_BUFFER,
      sndbuf: SOCKET_BUFFER,
      ...(local !== undefined ? { address: local } : {}),
    });
    this.socket.poll(POLL_READABLE, () => this.onReadable());
  }

  /** One packet (control, ping, OCC exit), sent at once; `sent` runs either way. */
  send(wire: Buffer, sent?: () => void): void {
    if (!this.isClosed) {
      const one = this.buffers.one;
      one.set(0, wire);
      try {
        // 0: the socket buffer is full; the control channel retransmits.
        this.socket.send(one, this.buffers.oneTo, 1);
      } catch (error) {
        this.events.failed('socket-error', (error as Error).message);
      }
    }
    sent?.();
  }

  /** Sends packets 0..count-1 of buffers.tx; returns how many the kernel took. */
  sendBatch(count: number): number {
    if (this.isClosed || count === 0) return 0;
    try {
      return this.socket.send(this.buffers.tx, this.buffers.to, count);
    } catch (error) {
      this.events.failed('socket-error', (error as Error).message);
      return 0;
    }
  }

  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.socket.stopPoll();
    this.socket.close();
  }

  private onReadable(): void {
    const b = this.buffers;
    for (let round = 0; round < RECV_ROUNDS && !this.isClosed; round++) {
      let n: number;
      try {
        n = this.socket.recv(b.rx, b.from, BULK_BATCH);
      } catch (error) {
        this.events.failed('socket-error', (error as Error).message);
        return;
      }
      if (n === 0) return;
      this.events.receiveBatch(n);
      if (n < BULK_BATCH) return;
    }
  }
}

// A shard's TCP connections (proto tcp-server) as one LinkIO: each connection's packets
// (OpenVPN's 2-byte length framing) look like datagrams from its remote address, and a packet
// sent to that address goes down its connection. So the shard runs TCP clients through the
// same code as UDP ones: a client is found by its address, and a connection is one client, as
// in OpenVPN's multi_tcp. The listener is this shard's own socket of the server's SO_REUSEPORT
// group; the kernel spreads new connections over the shards.
import { createServer, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

import { COUNTER } from '../../shared/counters';
import type { LinkIO } from '../../shared/io';
import { ADDRESS_SIZE, POLL_READABLE, PeerAddresses, type PacketBatch, type PeerAddress } from '../../shared/native';
import { STREAM_LENGTH_SIZE, StreamDeframer, writeStreamLength } from '../../shared/protocol/stream-framing';
import { addressKey } from './clients';

/** Bytes waiting in one connection's send queue before further packets to it are dropped. */
const MAX_QUEUED = 1 << 20;
const SWEEP_MS = 1000;

interface Connection {
  readonly socket: Socket;
  readonly deframer: StreamDeframer;
  readonly queue: Buffer[];
  readonly key: string;
  readonly addressBytes: Uint8Array;
  readonly acceptedAt: number;
  /** Frames to write at the end of the current send(). */
  pending: Buffer[];
  closed: boolean;
}

export interface TcpLinksOptions {
  /** The listening socket's descriptor (this shard's own; closed with the links). */
  readonly listenerFd: number;
  /** The largest packet a peer may frame (a bad length closes its connection). */
  readonly maxPacket: number;
  /** --tcp-nodelay. */
  readonly noDelay: boolean;
  /** A connection that has not started a session after this long is closed (hand-window). */
  readonly idleMs: number;
  readonly counters: Float64Array;
}

export class TcpLinks implements LinkIO {
  private readonly server: Server;
  private readonly byKey = new Map<string, Connection>();
  /** Connections with received packets waiting, in arrival order. */
  private readonly ready: Connection[] = [];
  private readable: ((events: number) => void) | null = null;
  private readonly touched: Connection[] = [];
  private readonly sweeper: NodeJS.Timeout;
  private readonly one = new PeerAddresses(1);
  /** Whether the shard has a client at an address key (set by the shard). */
  hasClient: (key: string) => boolean = () => false;
  /** A connection closed (by the peer, a reset, or us): the shard drops its client. */
  onClosed: (key: string) => void = () => {};

  constructor(private readonly options: TcpLinksOptions) {
    this.server = createServer({ noDelay: options.noDelay, pauseOnConnect: false }, (socket) => this.accept(socket));
    // Accept errors (EMFILE, ...) must not kill the shard; the connection is simply not taken.
    this.server.on('error', () => {});
    this.server.listen({ fd: options.listenerFd });
    this.sweeper = setInterval(() => this.sweep(), SWEEP_MS);
  }

  private accept(socket: Socket): void {
    const counters = this.options.counters;
    const peer = peerOf(socket);
    if (peer === null) {
      socket.destroy();
      return;
    }
    this.one.set(0, peer);
    const addressBytes = this.one.bytes.slice(0, ADDRESS_SIZE);
    const conn: Connection = {
      socket,
      deframer: new StreamDeframer(this.options.maxPacket),
      queue: [],
      key: addressKey(addressBytes, 0),
      addressBytes,
      acceptedAt: performance.now(),
      pending: [],
      closed: false,
    };
    this.byKey.set(conn.key, conn);
    counters[COUNTER.tcpAccepted]++;
    counters[COUNTER.tcpConnections]++;
    socket.on('data', (chunk: Buffer) => this.onData(conn, chunk));
    socket.on('close', () => this.closed(conn));
    socket.on('error', () => {});
  }

  private onData(conn: Connection, chunk: Buffer): void {
    if (conn.closed) return;
    const wasEmpty = conn.queue.length === 0;
    const ok = conn.deframer.push(chunk, (packet) => conn.queue.push(Buffer.from(packet)));
    if (!ok) {
      // OpenVPN: "Bad encapsulated packet length from peer", and the connection is reset.
      this.options.counters[COUNTER.dropTcpFraming]++;
      this.closeConnection(conn);
      return;
    }
    if (wasEmpty && conn.queue.length > 0) this.ready.push(conn);
    if (this.ready.length > 0) this.readable?.(POLL_READABLE);
  }

  private closed(conn: Connection): void {
    if (conn.closed) return;
    conn.closed = true;
    conn.queue.length = 0;
    if (this.byKey.get(conn.key) === conn) this.byKey.delete(conn.key);
    this.options.counters[COUNTER.tcpConnections]--;
    this.onClosed(conn.key);
  }

  private closeConnection(conn: Connection): void {
    conn.socket.destroy();
    this.closed(conn);
  }

  /** Closes connections that never started a session within hand-window. */
  private sweep(): void {
    const limit = performance.now() - this.options.idleMs;
    for (const conn of this.byKey.values()) {
      if (conn.acceptedAt < limit && !this.hasClient(conn.key)) {
        this.options.counters[COUNTER.dropTcpIdle]++;
        this.closeConnection(conn);
      }
    }
  }

  poll(events: number, callback: (events: number) => void): void {
    this.readable = events & POLL_READABLE ? callback : null;
  }

  stopPoll(): void {
    this.readable = null;
  }

  recv(batch: PacketBatch, from: PeerAddresses): number {
    let n = 0;
    while (n < batch.size && this.ready.length > 0) {
      const conn = this.ready[0]!;
      while (n < batch.size && conn.queue.length > 0) {
        const packet = conn.queue.shift()!;
        if (packet.length > batch.capacity) continue;
        batch.set(n, packet);
        from.bytes.set(conn.addressBytes, n * ADDRESS_SIZE);
        n++;
      }
      if (conn.queue.length === 0) this.ready.shift();
    }
    return n;
  }

  /**
   * Frames each packet onto the connection of its address; one write per connection. Every
   * packet counts as taken: one for a connection that is gone or does not read is dropped
   * here and counted, as a full UDP socket buffer drops a datagram.
   */
  send(batch: PacketBatch, to: PeerAddresses, count: number): number {
    for (let i = 0; i < count; i++) {
      const conn = this.byKey.get(addressKey(to.bytes, i));
      if (conn === undefined || conn.closed) continue;
      const length = batch.lengths[i]!;
      const frame = Buffer.allocUnsafe(STREAM_LENGTH_SIZE + length);
      writeStreamLength(frame, 0, length);
      frame.set(batch.memory.subarray(batch.offsets[i]!, batch.offsets[i]! + length), STREAM_LENGTH_SIZE);
      if (conn.pending.length === 0) this.touched.push(conn);
      conn.pending.push(frame);
    }
    for (const conn of this.touched) {
      if (conn.socket.writableLength > MAX_QUEUED) {
        this.options.counters[COUNTER.dropTcpSlowReader] += conn.pending.length;
      } else {
        conn.socket.write(conn.pending.length === 1 ? conn.pending[0]! : Buffer.concat(conn.pending));
      }
      conn.pending = [];
    }
    this.touched.length = 0;
    return count;
  }

  /** The shard dropped the client at this address: its connection goes too (multi_close_instance). */
  closePeer(key: string): void {
    const conn = this.byKey.get(key);
    if (conn !== undefined) this.closeConnection(conn);
  }

  close(): void {
    clearInterval(this.sweeper);
    this.server.close();
    for (const conn of [...this.byKey.values()]) this.closeConnection(conn);
  }
}

/** The remote end of an accepted connection; an IPv4 peer on a dual-stack listener as IPv4. */
function peerOf(socket: Socket): PeerAddress | null {
  const address = socket.remoteAddress;
  const port = socket.remotePort;
  if (address === undefined || port === undefined) return null;
  if (address.startsWith('::ffff:') && address.includes('.')) return { family: 4, address: address.slice(7), port };
  return { family: address.includes(':') ? 6 : 4, address, port };
}

// A shard's TCP connections (proto tcp-server) as one LinkIO: each connection's packets
// (OpenVPN's 2-byte length framing, framed-connection.ts) look like datagrams from its remote
// address, and a packet sent to that address goes down its connection. So the shard runs TCP
// clients through the same code as UDP ones: a client is found by its address, and a
// connection is one client, as in OpenVPN's multi_tcp. The listener is this shard's own socket
// of the server's SO_REUSEPORT group; the kernel spreads new connections over the shards.
import { createServer, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

import { COUNTER } from '../../shared/counters';
import { FramedConnection } from '../../shared/framed-connection';
import type { LinkIO } from '../../shared/io';
import { ADDRESS_SIZE, POLL_READABLE, PeerAddresses, type PacketBatch, type PeerAddress } from '../../shared/native';
import { addressKey } from './clients';

const SWEEP_MS = 1000;

interface Connection {
  readonly framed: FramedConnection;
  readonly key: string;
  readonly addressBytes: Uint8Array;
  readonly acceptedAt: number;
  /** In the ready list (has queued packets). */
  ready: boolean;
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
  /** Connections held at once (clients plus handshakes in progress); more are refused at accept. */
  readonly maxConnections: number;
  readonly counters: Float64Array;
  log(level: number, message: string): void;
}

export class TcpLinks implements LinkIO {
  private readonly server: Server;
  private readonly byKey = new Map<string, Connection>();
  /** Connections with received packets waiting, in arrival order. */
  private readonly ready: Connection[] = [];
  private readable: ((events: number) => void) | null = null;
  private refire: NodeJS.Immediate | null = null;
  private readonly touched: Connection[] = [];
  private readonly sweeper: NodeJS.Timeout;
  private readonly one = new PeerAddresses(1);
  /** Whether the shard has a client at an address key (set by the shard). */
  hasClient: (key: string) => boolean = () => false;
  /** A connection closed (by the peer, a reset, or us): the shard drops its client. */
  onClosed: (key: string) => void = () => {};

  constructor(private readonly options: TcpLinksOptions) {
    this.server = createServer({ noDelay: options.noDelay }, (socket) => this.accept(socket));
    this.server.maxConnections = options.maxConnections;
    // Over the limit, Node closes the new socket at once (OpenVPN refuses beyond max-clients).
    this.server.on('drop', () => options.counters[COUNTER.dropTcpLimit]++);
    // Accept errors (EMFILE, ...) must not kill the shard; say so and go on.
    this.server.on('error', (error) => options.log(1, `TCP listener: ${error.message}`));
    this.server.listen({ fd: options.listenerFd });
    this.sweeper = setInterval(() => this.sweep(), SWEEP_MS);
  }

  /** Whether the listener took its descriptor over (false: listen failed, the error was logged). */
  get listening(): boolean {
    return this.server.listening;
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
    const key = addressKey(addressBytes, 0);
    // The same address and port again (NAT reuse, a peer that restarted before we saw its
    // reset): the old connection is dead, and so is its client.
    const old = this.byKey.get(key);
    if (old !== undefined) old.framed.close();
    const conn: Connection = {
      framed: new FramedConnection(socket, this.options.maxPacket, {
        packets: () => this.queued(conn),
        // OpenVPN: "Bad encapsulated packet length from peer", and the connection is reset.
        framingError: () => counters[COUNTER.dropTcpFraming]++,
        closed: () => this.closed(conn),
      }),
      key,
      addressBytes,
      acceptedAt: performance.now(),
      ready: false,
    };
    this.byKey.set(key, conn);
    counters[COUNTER.tcpAccepted]++;
    counters[COUNTER.tcpConnections]++;
  }

  private queued(conn: Connection): void {
    if (!conn.ready) {
      conn.ready = true;
      this.ready.push(conn);
    }
    this.notify();
  }

  /** Runs the poll callback while packets wait: once now, then once per loop turn until drained. */
  private notify(): void {
    if (this.readable === null || this.ready.length === 0) return;
    this.readable(POLL_READABLE);
    if (this.ready.length > 0 && this.refire === null) {
      this.refire = setImmediate(() => {
        this.refire = null;
        this.notify();
      });
    }
  }

  private closed(conn: Connection): void {
    this.options.counters[COUNTER.tcpConnections]--;
    // Only the connection the address maps to speaks for its client; a replaced one does not.
    if (this.byKey.get(conn.key) !== conn) return;
    this.byKey.delete(conn.key);
    this.onClosed(conn.key);
  }

  /** Closes connections that never started a session within hand-window. */
  private sweep(): void {
    const limit = performance.now() - this.options.idleMs;
    for (const conn of this.byKey.values()) {
      if (conn.acceptedAt < limit && !this.hasClient(conn.key)) {
        this.options.counters[COUNTER.dropTcpIdle]++;
        conn.framed.close();
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
      const queue = conn.framed.queue;
      while (n < batch.size && queue.length > 0) {
        const packet = queue.shift()!;
        if (packet.length > batch.capacity) continue;
        batch.set(n, packet);
        from.bytes.set(conn.addressBytes, n * ADDRESS_SIZE);
        n++;
      }
      if (queue.length === 0) {
        conn.ready = false;
        this.ready.shift();
      }
    }
    return n;
  }

  /**
   * Frames each packet onto the connection of its address; one write per connection. Every
   * packet counts as taken: one for a connection that is gone or does not read is dropped
   * here and counted, as a full UDP socket buffer drops a datagram.
   */
  send(batch: PacketBatch, to: PeerAddresses, count: number): number {
    let conn: Connection | undefined;
    for (let i = 0; i < count; i++) {
      // Runs of packets to one client are the rule: look the connection up once per run.
      if (i === 0 || !sameEntry(to.bytes, i - 1, i)) conn = this.byKey.get(addressKey(to.bytes, i));
      if (conn === undefined || conn.framed.closed) continue;
      if (!this.touched.includes(conn)) this.touched.push(conn);
      conn.framed.add(batch.memory, batch.offsets[i]!, batch.lengths[i]!);
    }
    for (const c of this.touched) this.options.counters[COUNTER.dropTcpSlowReader] += c.framed.flush();
    this.touched.length = 0;
    return count;
  }

  /** The shard dropped the client at this address: its connection goes too (multi_close_instance). */
  closePeer(key: string): void {
    this.byKey.get(key)?.framed.close();
  }

  close(): void {
    clearInterval(this.sweeper);
    if (this.refire !== null) clearImmediate(this.refire);
    this.server.close();
    for (const conn of [...this.byKey.values()]) conn.framed.close();
  }
}

function sameEntry(bytes: Uint8Array, a: number, b: number): boolean {
  const x = a * ADDRESS_SIZE;
  const y = b * ADDRESS_SIZE;
  for (let k = 0; k < ADDRESS_SIZE; k++) if (bytes[x + k] !== bytes[y + k]) return false;
  return true;
}

/** The remote end of an accepted connection; an IPv4 peer on a dual-stack listener as IPv4. */
function peerOf(socket: Socket): PeerAddress | null {
  const address = socket.remoteAddress;
  const port = socket.remotePort;
  if (address === undefined || port === undefined) return null;
  if (address.startsWith('::ffff:') && address.includes('.')) return { family: 4, address: address.slice(7), port };
  return { family: address.includes(':') ? 6 : 4, address, port };
}

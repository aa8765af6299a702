// Data packets of a receive batch, opened run by run: consecutive P_DATA packets on one key are
// authenticated and decrypted in place by one DataChannelKey.decrypt call (one trip into the
// addon), as the server's shards and the client both read their UDP sockets. OpenVPN handles a
// datagram at a time; the batch must keep that order wherever it matters:
//   - a pending run is opened before any control packet of the same batch is handled (flush),
//     since that packet may retire a key or close the peer (its keys destroyed);
//   - a run whose key left its peer meanwhile (a handler closed it) is dropped, never opened.
// Nothing here allocates per packet: the run is a set of offsets into the receive memory.
import { PacketBatch } from '../native';
import { DecryptResults, type DataChannelKey } from './data-channel';

/** What the owner of the receive batch does with the runs. */
export interface DataRunHandler<P> {
  /** Whether `key` still belongs to `peer`: not retired, not destroyed (the peer closed). */
  holds(peer: P, key: DataChannelKey): boolean;
  /**
   * `count` packets on `key` of `peer` were opened, `accepted` of them authentic and not
   * replayed. Packet j: results.ok(j), its plaintext at results.payloadOffsets[j] /
   * payloadLengths[j] in the receive memory, its receive-batch index index[j].
   */
  opened(peer: P, key: DataChannelKey, count: number, accepted: number, now: number): void;
  /** `count` packets whose key left `peer` before they were opened: dropped. */
  stale(peer: P, count: number): void;
}

export class DataRuns<P> {
  /** Outcome of each packet of the run last opened. */
  readonly results: DecryptResults;
  /** Receive-batch index of each packet of the run last opened. */
  readonly index: Uint32Array;
  private readonly run: PacketBatch;
  private key: DataChannelKey | null = null;
  private peer: P | null = null;
  private count = 0;

  /** Runs over `memory`, the receive batch's memory, of up to `size` packets. */
  constructor(
    memory: Uint8Array,
    size: number,
    private readonly handler: DataRunHandler<P>,
  ) {
    // Capacity 0: decrypt only shrinks packets, nothing is read into the run's slots.
    this.run = new PacketBatch(memory, new Uint32Array(size), 0);
    this.index = new Uint32Array(size);
    this.results = new DecryptResults(size);
  }

  /** Queues packet `index` of the receive batch (memory[at, at + length)); another key than the pending run's opens that run first. */
  add(peer: P, key: DataChannelKey, index: number, at: number, length: number, now: number): void {
    if (key !== this.key || this.count === this.index.length) {
      this.flush(now);
      this.key = key;
      this.peer = peer;
    }
    const j = this.count++;
    this.run.offsets[j] = at;
    this.run.lengths[j] = length;
    this.index[j] = index;
  }

  /** Opens the pending run. Call before handling a control packet, and at the end of the receive batch. */
  flush(now: number): void {
    const key = this.key;
    // Set together with the key.
    const peer = this.peer as P;
    const count = this.count;
    this.key = null;
    this.peer = null;
    this.count = 0;
    if (key === null || count === 0) return;
    if (!this.handler.holds(peer, key)) {
      this.handler.stale(peer, count);
      return;
    }
    const accepted = key.decrypt(this.run, count, now, this.results);
    this.handler.opened(peer, key, count, accepted, now);
  }
}

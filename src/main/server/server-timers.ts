// The server's once-a-second work on the main thread (multi.c multi_process_per_second_timers):
// every shard is asked for its clients' byte counters and last-packet times (status, management,
// --inactive), ifconfig-pool-persist is saved every SECONDS it names, and once a minute the
// heaps are asked to give memory back: every thread's V8 heap (shrinkJsHeap: a busy isolate grows
// its old generation to the garbage of renegotiations and never shrinks it by itself), then the
// C heap's free pages (trimHeap: what the shards' TLS sessions and buffers freed in the middle
// of their malloc arenas would otherwise stay in RSS).
import { shrinkJsHeap, trimHeap } from '../../shared/native';
import type { Logger } from '../../shared/log';
import type { PoolPersist } from './pool-persist';
import type { ShardPool } from './shard-pool';

/** How often the heaps are asked to shrink. */
export const TRIM_HEAP_SECONDS = 60;
const SLOW_TRIM_MS = 20;

export class PerSecondTimers {
  private seconds = 0;
  private statsId = 0;
  private readonly interval: NodeJS.Timeout;

  constructor(
    private readonly shards: ShardPool,
    private readonly persist: PoolPersist | null,
    private readonly logger: Logger,
  ) {
    this.interval = setInterval(() => this.second(), 1000);
  }

  stop(): void {
    clearInterval(this.interval);
  }

  private second(): void {
    this.seconds++;
    this.shards.broadcast({ type: 'stats-request', id: ++this.statsId });
    const refresh = this.persist?.refreshSeconds ?? 0;
    if (refresh > 0 && this.seconds % refresh === 0) this.persist?.save();
    if (this.seconds % TRIM_HEAP_SECONDS === 0) this.trim();
  }

  private trim(): void {
    // The shards' collections run incrementally in their own threads; what they free in the C
    // heap (TLS sessions' buffers behind collected objects) is released by the next minute's trim.
    this.shards.broadcast({ type: 'shrink-heap' });
    shrinkJsHeap();
    const started = performance.now();
    const released = trimHeap();
    const ms = performance.now() - started;
    // It holds each malloc arena's lock while it walks it: a slow one is worth a line at verb 3.
    this.logger.log(ms >= SLOW_TRIM_MS ? 3 : 4, `C heap trimmed in ${ms.toFixed(1)} ms${released ? '' : ' (nothing to release)'}`);
  }
}

// The server's once-a-second work on the main thread (multi.c multi_process_per_second_timers):
// every shard is asked for its clients' byte counters and last-packet times (status, management,
// --inactive), ifconfig-pool-persist is saved every SECONDS it names, and the heaps are asked to
// give memory back: every heap-shrink-interval seconds (default 60) every thread's V8 heap
// (shrinkJsHeap: V8's own memory reducer waits for the allocation rate to fall, which a
// renegotiating shard never lets happen), and once a minute the C heap's free pages (trimHeap:
// what the shards' TLS sessions and buffers freed in the middle of their malloc arenas would
// otherwise stay in RSS).
import { shrinkJsHeap, trimHeap } from '../../shared/native';
import type { Logger } from '../../shared/log';
import type { PoolPersist } from './pool-persist';
import type { ShardPool } from './shard-pool';

/** How often the heaps are asked to shrink. */
export const TRIM_HEAP_SECONDS = 60;
const SLOW_TRIM_MS = 20;

/** Runs `work` and logs how long it took: at verb 3 from SLOW_TRIM_MS (it may hold locks or pause the thread), else at verb 4. */
function timed(logger: Logger, work: () => boolean, done: (released: boolean) => string): void {
  const started = performance.now();
  const released = work();
  const ms = performance.now() - started;
  logger.log(ms >= SLOW_TRIM_MS ? 3 : 4, `${done(released)} in ${ms.toFixed(1)} ms`);
}

export class PerSecondTimers {
  private seconds = 0;
  private statsId = 0;
  private readonly interval: NodeJS.Timeout;

  constructor(
    private readonly shards: ShardPool,
    private readonly persist: PoolPersist | null,
    private readonly logger: Logger,
    /** heap-shrink-interval: every this many seconds the V8 heaps are asked to shrink (0: never). */
    private readonly heapShrinkSeconds: number,
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
    if (this.heapShrinkSeconds > 0 && this.seconds % this.heapShrinkSeconds === 0) this.shrink();
    if (this.seconds % TRIM_HEAP_SECONDS === 0) this.trim();
  }

  private shrink(): void {
    // The shards' collections run incrementally in their own threads; what they free in the C
    // heap (TLS sessions' buffers behind collected objects) is released by the next trim.
    this.shards.broadcast({ type: 'shrink-heap' });
    // Starting the marking is synchronous (a few ms on a large heap): a slow start is worth a line at verb 3.
    timed(this.logger, shrinkJsHeap, () => 'main thread JavaScript heap collection started');
  }

  private trim(): void {
    // It holds each malloc arena's lock while it walks it: a slow one is worth a line at verb 3.
    timed(this.logger, trimHeap, (released) => `C heap trimmed${released ? '' : ' (nothing to release)'}`);
  }
}

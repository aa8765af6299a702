// The server's once-a-second work on the main thread (multi.c multi_process_per_second_timers):
// every shard is asked for its clients' byte counters and last-packet times (status, management,
// --inactive), and ifconfig-pool-persist is saved every SECONDS it names.
import type { PoolPersist } from './pool-persist';
import type { ShardPool } from './shard-pool';

export class PerSecondTimers {
  private seconds = 0;
  private statsId = 0;
  private readonly interval: NodeJS.Timeout;

  constructor(
    private readonly shards: ShardPool,
    private readonly persist: PoolPersist | null,
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
  }
}

// ifconfig-pool-persist FILE [SECONDS] (pool.c ifconfig_pool_read / ifconfig_pool_write): the
// common name -> address pairs of the ifconfig pool, read at the start of a run and written
// every SECONDS and at its end, so a client keeps its address across restarts.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';

import type { PathRef } from '../../shared/config/options-types';
import type { Logger } from '../../shared/log';
import type { IfconfigPool } from './ifconfig-pool';

export class PoolPersist {
  constructor(
    private readonly pool: IfconfigPool,
    private readonly file: PathRef & { refreshSeconds: number },
    private readonly logger: Logger,
  ) {}

  /** Seconds between saves; 0: only at the end of the run. */
  get refreshSeconds(): number {
    return this.file.refreshSeconds;
  }

  load(): void {
    try {
      const loaded = this.pool.loadPersistFile(readFileSync(this.file.resolved, 'utf8'));
      this.logger.log(3, `ifconfig-pool-persist ${this.file.path}: ${loaded.loaded} entries`);
    } catch {
      // No file yet: it is written at the first save.
    }
  }

  /** Writes the file whole, through a rename, so a crash never leaves half of it. */
  save(): void {
    const { path, resolved } = this.file;
    try {
      writeFileSync(`${resolved}.tmp`, this.pool.toPersistFile());
      renameSync(`${resolved}.tmp`, resolved);
    } catch (error) {
      this.logger.log(1, `ifconfig-pool-persist ${path}: ${(error as Error).message}`);
    }
  }
}

// ifconfig-pool-persist FILE [SECONDS] (pool.c ifconfig_pool_read / ifconfig_pool_write): the
// common name -> address pairs of the ifconfig pool, read at the start of a run and written
// every SECONDS and at its end, so a client keeps its address across restarts. The file is
// opened once, before the server drops root, and rewritten through that descriptor (KeptFile),
// so the saves, and the next run after a SIGUSR1, still work once the server is nobody.
import { readFileSync } from 'node:fs';

import type { PathRef } from '../../shared/config/options-types';
import { KeptFile } from '../../shared/kept-file';
import type { Logger } from '../../shared/log';
import type { IfconfigPool } from './ifconfig-pool';

export class PoolPersist {
  private kept: KeptFile | null = null;

  constructor(
    private readonly pool: IfconfigPool,
    private readonly persistFile: PathRef & { refreshSeconds: number },
    private readonly logger: Logger,
  ) {}

  /** Seconds between saves; 0: only at the end of the run. */
  get refreshSeconds(): number {
    return this.persistFile.refreshSeconds;
  }

  /**
   * Opens the file (creating it when missing; a restart takes the descriptor the process kept)
   * and takes the pairs it holds. A file this process cannot open for writing is still read,
   * and not saved.
   */
  load(): void {
    const { path, resolved } = this.persistFile;
    let text: string;
    this.kept = KeptFile.tryOpen(resolved, (reason) =>
      this.logger.log(1, `ifconfig-pool-persist ${path}: cannot open for writing, so this run does not save it: ${reason}`),
    );
    try {
      text = this.kept !== null ? this.kept.read() : readFileSync(resolved, 'utf8');
    } catch (error) {
      if (this.kept !== null) this.logger.log(1, `ifconfig-pool-persist ${path}: cannot read it: ${(error as Error).message}`);
      return;
    }
    const loaded = this.pool.loadPersistFile(text);
    this.logger.log(3, `ifconfig-pool-persist ${path}: ${loaded.loaded} entries`);
  }

  /** Writes the file whole, through the descriptor opened by load(). */
  save(): void {
    if (this.kept === null) return;
    try {
      this.kept.replace(this.pool.toPersistFile());
    } catch (error) {
      this.logger.log(1, `ifconfig-pool-persist ${this.persistFile.path}: ${(error as Error).message}`);
    }
  }
}

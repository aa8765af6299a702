// A test aid, not a feature: with SHARDVPN_FAULT_INJECTION=1 in the server's environment, the
// management interface takes `shard-fault n throw|exit` and shard n fails on purpose (an uncaught
// exception thrown from its event loop, or the worker's own process.exit), so tests can prove
// that a failed shard is replaced and that the others serve on. Without the variable neither the
// command nor the shard's handling of the message exists; no config option turns it on.

export const FAULT_INJECTION_ENV = 'SHARDVPN_FAULT_INJECTION';

/** How a shard fails: `throw` (an uncaught exception in the worker) or `exit` (the worker calls process.exit). */
export type ShardFault = 'throw' | 'exit';

export const SHARD_FAULTS: readonly ShardFault[] = ['throw', 'exit'];

/** Read at each use: a worker gets a copy of the environment its process had when it started. */
export function faultInjectionEnabled(): boolean {
  return process.env[FAULT_INJECTION_ENV] === '1';
}

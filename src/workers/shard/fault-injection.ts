// The shard's side of the fault-injection test aid (src/shared/fault-injection.ts): fail the
// way a bug would, from the event loop rather than from the message handler, so the failure is an
// uncaught exception of the worker (or the worker's own exit), not an error the handler could see.
// Without SHARDVPN_FAULT_INJECTION=1 a 'fault' message is ignored.
import { faultInjectionEnabled, type ShardFault } from '../../shared/fault-injection';

/** Exit code of a worker that exits on purpose (EX_SOFTWARE). */
export const FAULT_EXIT_CODE = 70;

/** Returns whether the fault was scheduled (false: fault injection is off). */
export function injectFault(shard: number, fault: ShardFault): boolean {
  if (!faultInjectionEnabled()) return false;
  setImmediate(() => {
    if (fault === 'exit') process.exit(FAULT_EXIT_CODE);
    throw new Error(`shard ${shard}: fault injected (${fault})`);
  });
  return true;
}

// `shard-fault n throw|exit`: the management side of the fault-injection test aid
// (src/shared/fault-injection.ts). The table (management-commands.ts) has this command, and
// `help` lists it, only while SHARDVPN_FAULT_INJECTION=1; otherwise it is an unknown command.
import { SHARD_FAULTS, type ShardFault } from '../../shared/fault-injection';
import type { ManagementCommand } from './management-command-types';

export const SHARD_FAULT_COMMAND: ManagementCommand = {
  min: 2,
  max: 2,
  help: ['shard-fault n throw|exit : Test aid: shard n throws from its event loop, or its worker exits.'],
  run(p, host, s) {
    const index = /^\d+$/.test(p[1] as string) ? Number(p[1]) : -1;
    const fault = p[2] as string;
    if (!(SHARD_FAULTS as readonly string[]).includes(fault)) {
      s.send(`ERROR: shard-fault: '${fault}' is not one of ${SHARD_FAULTS.join(', ')}`);
      return;
    }
    s.send(
      host.view.injectShardFault(index, fault as ShardFault)
        ? `SUCCESS: shard ${index} fault '${fault}' injected`
        : `ERROR: no shard ${p[1] as string}`,
    );
  },
};

// The commands of OpenVPN's management interface (manage.c man_dispatch_command) for a server,
// worded as OpenVPN 2.6 words its replies. One session's command in, reply lines out; the
// session object (management-session.ts) owns the socket and the per-session switches. The
// commands are a table (name -> parameter counts, help lines, handler), as the config directives
// are; the handlers live by concern in management-{session,client,daemon}-commands.ts.
import { CLIENT_COMMANDS } from './management-client-commands';
import type { CommandHost, CommandSession, ManagementCommand } from './management-command-types';
import { DAEMON_COMMANDS } from './management-daemon-commands';
import { SHARD_FAULT_COMMAND } from './management-fault-command';
import { faultInjectionEnabled } from '../../shared/fault-injection';
import { SESSION_COMMANDS } from './management-session-commands';

export { MANAGEMENT_VERSION, atoi, type CommandHost, type CommandSession } from './management-command-types';
// The session side (management.ts) formats >LOG: and >STATE: with these.
export { formatLogEntry, formatStateEntry, type LogEntry, type ManagementStateName, type StateEntry } from './management-history';

/** Commands OpenVPN knows that a shardvpn server does not implement (man_command_unsupported). */
const UNSUPPORTED = new Set([
  'auth-retry',
  'certificate',
  'cr-response',
  'forget-passwords',
  'hold',
  'mute',
  'needok',
  'needstr',
  'net',
  'password',
  'pk-sig',
  'pkcs11-id-count',
  'pkcs11-id-get',
  'proxy',
  'remote',
  'remote-entry-count',
  'remote-entry-get',
  'rsa-sig',
  'test',
  'username',
]);

/** man_dispatch_command's commands, in the order `help` lists them (OpenVPN 2.6's wording). */
const COMMANDS: Readonly<Record<string, ManagementCommand>> = {
  bytecount: SESSION_COMMANDS.bytecount,
  echo: SESSION_COMMANDS.echo,
  exit: SESSION_COMMANDS.exit,
  quit: SESSION_COMMANDS.quit,
  help: {
    min: 0,
    max: 0,
    help: ['help                   : Print this message.'],
    run(_p, host, s) {
      s.send(`Management Interface for ${host.view.title}`);
      s.send('Commands:');
      for (const command of Object.values(commandTable())) for (const line of command.help ?? []) s.send(line);
      s.send('END');
    },
  },
  kill: CLIENT_COMMANDS.kill,
  'load-stats': DAEMON_COMMANDS['load-stats'],
  log: SESSION_COMMANDS.log,
  pid: DAEMON_COMMANDS.pid,
  'shard-restart': DAEMON_COMMANDS['shard-restart'],
  'client-auth': CLIENT_COMMANDS['client-auth'],
  'client-auth-nt': CLIENT_COMMANDS['client-auth-nt'],
  'client-pending-auth': CLIENT_COMMANDS['client-pending-auth'],
  'client-deny': CLIENT_COMMANDS['client-deny'],
  'client-kill': CLIENT_COMMANDS['client-kill'],
  'env-filter': SESSION_COMMANDS['env-filter'],
  signal: DAEMON_COMMANDS.signal,
  state: SESSION_COMMANDS.state,
  status: DAEMON_COMMANDS.status,
  verb: DAEMON_COMMANDS.verb,
  version: DAEMON_COMMANDS.version,
  nclients: DAEMON_COMMANDS.nclients,
};

/** The table, with the fault-injection test aid only while SHARDVPN_FAULT_INJECTION=1. */
function commandTable(): Readonly<Record<string, ManagementCommand>> {
  return faultInjectionEnabled() ? { ...COMMANDS, 'shard-fault': SHARD_FAULT_COMMAND } : COMMANDS;
}

/** Runs one tokenized command line (p[0] is the command). */
export function runCommand(p: readonly string[], host: CommandHost, s: CommandSession): void {
  const name = p[0];
  if (name === undefined) return;
  const table = commandTable();
  const command = Object.hasOwn(table, name) ? table[name] : undefined;
  if (command === undefined) {
    if (UNSUPPORTED.has(name)) s.send(`ERROR: The '${name}' command is not supported by the current daemon mode`);
    else s.send("ERROR: unknown command, enter 'help' for more options");
    return;
  }
  if (p.length - 1 < command.min) {
    // man_need
    const n = command.min;
    s.send(`ERROR: the '${name}' command requires ${command.max > n ? 'at least ' : ''}${n} parameter${n > 1 ? 's' : ''}`);
    return;
  }
  command.run(p, host, s);
}

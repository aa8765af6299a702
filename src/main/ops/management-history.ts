// The management interface's remembered log lines and state changes (manage.c log_history,
// log_entry_print): what `log` and `state` print and `>LOG:` / `>STATE:` announce.

/** One remembered log line (`log all`, `>LOG:`): unix seconds, OpenVPN's flag letters, text. */
export interface LogEntry {
  readonly time: number;
  /** msg_flags_string: 'I' info, 'W' warning, 'N' non-fatal error, 'F' fatal, 'D' debug, '' other. */
  readonly flags: string;
  readonly message: string;
}

export type ManagementStateName =
  | 'INITIAL'
  | 'CONNECTING'
  | 'WAIT'
  | 'AUTH'
  | 'GET_CONFIG'
  | 'ASSIGN_IP'
  | 'ADD_ROUTES'
  | 'CONNECTED'
  | 'RECONNECTING'
  | 'EXITING'
  | 'RESOLVE'
  | 'TCP_CONNECT'
  | 'AUTH_PENDING';

/** One state change (`state`, `>STATE:`), as management_set_state records it. */
export interface StateEntry {
  readonly time: number;
  readonly name: ManagementStateName;
  /** e.g. SUCCESS for CONNECTED. */
  readonly detail?: string;
  /** Local tunnel IPv4 address. */
  readonly localIp?: string;
  readonly remote?: { readonly address: string; readonly port: number };
  readonly local?: { readonly address: string; readonly port: number };
  /** Local tunnel IPv6 address. */
  readonly localIp6?: string;
}

/** log_entry_print for `log`: `time,flags,message`. */
export function formatLogEntry(e: LogEntry): string {
  return `${e.time},${e.flags},${e.message}`;
}

/** log_entry_print for `state`: time,NAME,detail,local ip,remote addr,port,local addr,port[,local ip6]. */
export function formatStateEntry(e: StateEntry): string {
  const sock = (s: StateEntry['remote']): string => (s === undefined ? ',' : `${s.address},${s.port}`);
  const six = e.localIp6 !== undefined && e.localIp6 !== '' ? `,${e.localIp6}` : '';
  return `${e.time},${e.name},${e.detail ?? ''},${e.localIp ?? ''},${sock(e.remote)},${sock(e.local)}${six}`;
}

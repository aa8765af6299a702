// The >CLIENT: notifications of a management-client-auth server (manage.c
// management_notify_client_needing_auth, management_connection_established,
// management_notify_client_close, management_learn_addr), each management session's
// env-filter applied to the ENV lines.
import { bitsToNetmask, ipv4ToNumber, numberToIpv4 } from '../../shared/ip-math';
import type { ClientEvent } from './server-view';

/** env_filter_match (manage.c): which `>CLIENT:ENV` variables a filter level lets through. */
const FILTERED_ENV = [
  'username=',
  'password=',
  'X509_0_CN=',
  'tls_serial_',
  'untrusted_ip=',
  'ifconfig_local=',
  'ifconfig_netmask=',
  'daemon_start_time=',
  'daemon_pid=',
  'dev=',
  'ifconfig_pool_remote_ip=',
  'ifconfig_pool_netmask=',
  'time_duration=',
  'bytes_sent=',
  'bytes_received=',
  'session_id=',
  'session_state=',
];
function envPasses(item: string, level: number): boolean {
  if (level === 0) return true;
  if (level <= 1 && item.startsWith('X509_')) return true;
  if (level <= 2) return FILTERED_ENV.some((prefix) => item.startsWith(prefix));
  return false;
}

/** >CLIENT:ADDRESS prints IPv4 networks with a netmask (MAPF_SUBNET): 10.1.0.0/255.255.255.0. */
function addressForNotification(address: string): string {
  const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d{1,2})$/.exec(address);
  if (m === null) return address;
  const bits = Number(m[2]);
  if (bits > 32 || ipv4ToNumber(m[1] as string) < 0) return address;
  return `${m[1]}/${numberToIpv4(bitsToNetmask(bits))}`;
}

/**
 * The lines one management session is sent for a client event, its ENV block filtered at
 * `envFilter`; `nClients` is the client count connect and established report.
 */
export function clientNotification(event: ClientEvent, nClients: number, envFilter: number): string[] {
  const lines: string[] = [];
  // man_output_extra_env: n_clients goes through the same env filter as the rest.
  const nClientsLine = envPasses(`n_clients=${nClients}`, envFilter) ? [`>CLIENT:ENV,n_clients=${nClients}`] : [];
  const env = (vars: Readonly<Record<string, string>>): void => {
    for (const [name, value] of Object.entries(vars)) {
      const item = `${name}=${value}`.replace(/[\r\n]/g, ' ');
      if (envPasses(item, envFilter)) lines.push(`>CLIENT:ENV,${item}`);
    }
    lines.push('>CLIENT:ENV,END');
  };
  switch (event.type) {
    case 'connect':
      lines.push(`>CLIENT:CONNECT,${event.cid},${event.keyId}`, ...nClientsLine);
      env(event.env);
      break;
    case 'established':
      lines.push(`>CLIENT:ESTABLISHED,${event.cid}`, ...nClientsLine);
      env(event.env);
      break;
    case 'disconnect':
      lines.push(`>CLIENT:DISCONNECT,${event.cid}`);
      env(event.env);
      break;
    case 'address':
      lines.push(`>CLIENT:ADDRESS,${event.cid},${addressForNotification(event.address)},${event.primary ? 1 : 0}`);
      break;
  }
  return lines;
}

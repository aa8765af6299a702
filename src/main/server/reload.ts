// A hitless SIGHUP (reload-mode hitless): the new configuration goes to the running server
// instead of a restart. New clients get every new setting at their handshake; a connected
// client keeps its session, keys, address and shard unless the configuration now gives it
// something else (its client-config-dir file, the push list) or the new CRL revokes it: such a
// client is told to reconnect (RESTART) or dropped, as reload-changed-clients says. What a
// running server cannot take in place (reload-plan.ts) is left to a full restart by the caller.
import type { Options } from '../../shared/config';
import { loadTlsMaterial } from '../../shared/config/tls-material';
import type { Logger } from '../../shared/log';
import { preparedTls } from '../../shared/session/prepared-tls';
import type { KeyKeeper } from '../persist-key';
import { dataChannelSettings } from '../run-checks';
import type { Admission } from './admission';
import type { ClientEntry, ClientRegistry } from './clients';
import { revocationCheck } from './crl-check';
import { fingerprintOptions, planReload, unchanged, type OptionsFingerprint } from './reload-plan';
import type { ShardPool, ShardTemplate } from './shard-pool';
import { buildShardTemplate } from './shard-template';
import type { ServerTun } from './server-tun';

export type ReloadOutcome =
  | { readonly applied: true; readonly kept: number; readonly reconnected: number }
  | { readonly applied: false; readonly restartFor: string[] };

/** The parts of a running server a reload changes. */
export interface Reloadable {
  options: Options;
  /** The running configuration's fingerprint, taken when it was loaded. */
  fingerprint: OptionsFingerprint;
  template: ShardTemplate;
  readonly tun: ServerTun;
  readonly keys: KeyKeeper;
  readonly registry: ClientRegistry;
  readonly admission: Admission;
  readonly shards: ShardPool;
  readonly logger: Logger;
}

/**
 * Applies `next` to the running server, or says which directives need a restart. Throws (and
 * changes nothing) when the new TLS material or data-channel settings do not load.
 */
export function reloadServer(server: Reloadable, next: Options): ReloadOutcome {
  const nextFingerprint = fingerprintOptions(next, server.fingerprint);
  const plan = planReload(server.fingerprint, nextFingerprint);
  if (plan.restartFor.length > 0) return { applied: false, restartFor: plan.restartFor };
  // Everything that can fail first, so a bad certificate leaves the running settings alone.
  const data = dataChannelSettings(next);
  // Unchanged certificate lines keep the loaded ca/cert/key/dh: after `user nobody` the files may be
  // unreadable, and OpenSSL needs nothing new. The rest (CRL, tls-cipher, ...) is read again.
  const keepKeys = unchanged(server.fingerprint, nextFingerprint, ['ca', 'cert', 'key', 'extraCerts', 'pkcs12', 'dh']);
  const tls = loadTlsMaterial(next, keepKeys ? server.template.tls : undefined);
  preparedTls(tls);
  const revoked = revocationCheck(tls);
  const template: ShardTemplate = {
    ...buildShardTemplate(next, {
      tun: server.tun.device,
      tls,
      wrap: server.template.wrap,
      data,
      ...(server.template.authGenToken !== null ? { authTokenKey: server.template.authGenToken.key } : {}),
    }),
    cookieKey: server.template.cookieKey,
  };

  server.options = next;
  server.keys.adoptReload(next, tls);
  server.fingerprint = nextFingerprint;
  server.template = template;
  server.logger.verb = next.verb;
  server.registry.reconfigure(next);
  server.admission.reconfigure(next);
  server.shards.reconfigure(template);

  let kept = 0;
  let reconnected = 0;
  for (const entry of [...server.registry.entries()]) {
    const why = changedFor(server.registry, entry, revoked);
    if (why === null) {
      kept++;
      continue;
    }
    reconnected++;
    const restart = next.reloadChangedClients === 'restart';
    server.logger.log(
      1,
      `${entry.commonName}/${entry.realAddress.address}:${entry.realAddress.port} SIGHUP: ${why}: ${restart ? 'told to reconnect (RESTART)' : 'dropped'}`,
    );
    server.shards.post(entry.shard, { type: 'client-kill', peerId: entry.peerId, message: restart ? 'RESTART' : null });
  }
  server.logger.log(
    1,
    `SIGHUP: configuration reloaded without a restart${plan.applied.length > 0 ? ` (changed: ${plan.applied.join(', ')})` : ''}; ${kept} client${kept === 1 ? '' : 's'} kept, ${reconnected} ${next.reloadChangedClients === 'restart' ? 'told to reconnect' : 'dropped'}`,
  );
  return { applied: true, kept, reconnected };
}

/** Why the new configuration no longer fits a connected client; null when it still does. */
function changedFor(registry: ClientRegistry, entry: ClientEntry, revoked: (serialHex: string) => string | null): string | null {
  if (entry.certSerial !== null) {
    const reason = revoked(entry.certSerial);
    if (reason !== null) return reason;
  }
  if (registry.settingsKey(entry.commonName) !== entry.settingsKey) return 'its client-config-dir file or push list changed';
  return null;
}

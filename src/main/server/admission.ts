// Admitting a client that passed TLS (multi.c multi_connection_established and what runs
// before it): auth-user-pass-verify, duplicate-cn, username-as-common-name, the ifconfig pool
// and client-config-dir (ClientRegistry), the client-connect script, management-client-auth
// (client-auth / client-pending-auth / client-deny), learn-address, and on the way out
// client-disconnect. Scripts and the management client answer later; a client may leave (or
// its shard die, or the server stop) before they do, and then the answer is dropped.
import type { Options } from '../../shared/config';
import type { Logger } from '../../shared/log';
import { PUSH_BUNDLE_SIZE } from '../../shared/protocol/control-message';
import type { MainToShard, ShardToMain } from '../../shared/shard-protocol';
import { peerInfoEnvironment, runClientConnect, runClientDisconnect, runLearnAddress } from './client-scripts';
import {
  mergeClientConfig,
  parseClientConfig,
  type AuthDecision,
  type CcdSettings,
  type ClientEntry,
  type ClientRegistry,
} from './clients';
import type { ClientEvent, ManagementVerdict } from '../ops/server-view';
import { verifyUserPass } from './user-pass-verify';

type ClientAuth = Extract<ShardToMain, { type: 'client-auth' }>;

/** OpenVPN's client-connect environment of an admitted client (also the management ENV lines). */
export function clientEnvironment(entry: ClientEntry): Record<string, string> {
  return {
    common_name: entry.commonName,
    ...(entry.username !== null ? { username: entry.username } : {}),
    trusted_ip: entry.realAddress.address,
    trusted_port: String(entry.realAddress.port),
    ...(entry.virtual4 !== null ? { ifconfig_pool_remote_ip: entry.virtual4 } : {}),
    ...(entry.virtual6 !== null ? { ifconfig_pool_remote_ip6: entry.virtual6 } : {}),
    time_unix: String(entry.connectedSince),
  };
}

/** What AUTH_FAILED says of a refused login that came with a token: only an expired one is named. */
function tokenRefusal(token: NonNullable<ClientAuth['authToken']>): string {
  return token.state === 'Expired' || token.state === 'ExpiredEmptyUser' ? 'SESSION: token expired' : '';
}

/** auth-gen-token's variables for the login's checkers (auth_token.c add_session_token_env). */
function tokenEnvironment(token: NonNullable<ClientAuth['authToken']>): Record<string, string> {
  return { session_id: token.sessionId, session_state: token.state };
}

/** What learn-address hears of a client: its virtual addresses, then its iroutes (network/bits). */
function learnedAddresses(entry: ClientEntry): string[] {
  return [...(entry.virtual4 !== null ? [entry.virtual4] : []), ...(entry.virtual6 !== null ? [entry.virtual6] : []), ...entry.iroutes];
}

export interface AdmissionHost {
  post(shard: number, message: MainToShard): void;
  emit(event: ClientEvent): void;
}

export class Admission {
  /** Clients whose script or management verdict is awaited: peer-id -> shard. */
  private readonly pending = new Map<number, number>();
  /** management-client-auth: clients waiting for client-auth / client-deny, by client id. */
  private readonly verdicts = new Map<number, { keyId: number; peerId: number; resolve: (verdict: ManagementVerdict) => void }>();
  private stopped = false;

  constructor(
    private options: Options,
    private readonly registry: ClientRegistry,
    private readonly logger: Logger,
    private readonly host: AdmissionHost,
  ) {}

  /** A hitless reload: clients admitted from now on run the new scripts and settings. */
  reconfigure(options: Options): void {
    this.options = options;
  }

  /** A shard's client passed TLS and key method 2. */
  authenticated(shard: number, message: ClientAuth): void {
    const token = message.authToken;
    // ssl_verify.c verify_user_pass: a token decides alone unless external-auth hands it, with
    // its session_state, to the script and the management client.
    if (token !== undefined && token.state !== 'Initial' && this.options.authGenToken?.externalAuth !== true) {
      const user = message.username ?? '';
      if (token.state === 'Authenticated') {
        this.logger.log(1, `TLS: Username/auth-token authentication succeeded for username '${user}'`);
        return this.admit(shard, message, true);
      }
      this.logger.log(1, `TLS: Username/auth-token authentication failed for username '${user}'`);
      this.host.post(shard, { type: 'client-reject', peerId: message.peerId, reason: tokenRefusal(token) });
      return;
    }
    if (this.options.authUserPassVerify === undefined) return this.admit(shard, message);
    this.pending.set(message.peerId, shard);
    const request = {
      commonName: message.commonName,
      username: message.username ?? '',
      password: message.password ?? '',
      realAddress: message.realAddress,
      peerInfo: message.peerInfo,
      ...(token !== undefined ? { session: tokenEnvironment(token) } : {}),
    };
    void verifyUserPass(this.options, request, this.logger).then((ok) => {
      if (!this.stillPending(message.peerId, shard)) return;
      this.pending.delete(message.peerId);
      if (ok) return this.admit(shard, message);
      this.logger.log(
        1,
        `${message.commonName}/${message.realAddress.address}:${message.realAddress.port} TLS Auth Error: Auth Username/Password verification failed for peer`,
      );
      // verify_auth_token set the client's reason for an expired token, whoever refuses it.
      this.host.post(shard, { type: 'client-reject', peerId: message.peerId, reason: token !== undefined ? tokenRefusal(token) : '' });
    });
  }

  /**
   * The client left. False when it left while awaited (never announced, so no disconnect
   * either); the caller releases it from the registry.
   */
  gone(peerId: number): boolean {
    const wasPending = this.pending.delete(peerId);
    this.forgetVerdict(peerId);
    return !wasPending;
  }

  /** A shard died: forgets its awaited clients; returns their peer-ids. */
  shardDied(shard: number): Set<number> {
    const awaited = new Set<number>();
    for (const [peerId, index] of this.pending) {
      if (index !== shard) continue;
      this.pending.delete(peerId);
      this.forgetVerdict(peerId);
      awaited.add(peerId);
    }
    return awaited;
  }

  /** A client's session ended: the management notification, client-disconnect, learn-address. */
  disconnected(entry: ClientEntry, bytesReceived: number, bytesSent: number): void {
    const env = { ...clientEnvironment(entry), bytes_received: String(bytesReceived), bytes_sent: String(bytesSent) };
    this.host.emit({ type: 'disconnect', cid: entry.cid, env });
    runClientDisconnect(this.options, { ...env, time_duration: String(Math.floor(Date.now() / 1000) - entry.connectedSince) }, this.logger);
    for (const address of learnedAddresses(entry))
      runLearnAddress(this.options, 'delete', address, entry.commonName, clientEnvironment(entry), this.logger);
  }

  /** management client-auth / client-auth-nt / client-deny; false when no such client waits. */
  clientAuth(cid: number, keyId: number, verdict: ManagementVerdict): boolean {
    const waiter = this.verdicts.get(cid);
    if (waiter === undefined || waiter.keyId !== keyId) return false;
    this.verdicts.delete(cid);
    waiter.resolve(verdict);
    return true;
  }

  /** management client-pending-auth; false when no such client waits or its time is up. */
  clientPendingAuth(cid: number, keyId: number, extra: string, timeoutS: number): boolean {
    const waiter = this.verdicts.get(cid);
    const entry = waiter === undefined ? undefined : this.registry.get(waiter.peerId);
    if (waiter === undefined || entry === undefined || waiter.keyId !== keyId) return false;
    // As OpenVPN: at most max(reneg-sec / 2, hand-window) from the start, and the INFO_PRE
    // message must fit a control message.
    const elapsed = Math.floor(Date.now() / 1000) - entry.connectedSince;
    const left = Math.max(Math.floor(this.options.renegSec / 2), this.options.handWindow) - elapsed;
    if (left <= 0 || extra.length + 10 > PUSH_BUNDLE_SIZE) return false;
    this.host.post(entry.shard, {
      type: 'client-pending-auth',
      peerId: waiter.peerId,
      extra,
      timeoutS: Math.min(left, Math.max(0, timeoutS)),
    });
    return true;
  }

  /** The server stops: answers still to come are dropped. */
  stop(): void {
    this.stopped = true;
  }

  private stillPending(peerId: number, shard: number): boolean {
    return this.pending.get(peerId) === shard && !this.stopped;
  }

  private forgetVerdict(peerId: number): void {
    for (const [cid, waiter] of this.verdicts) {
      if (waiter.peerId !== peerId) continue;
      this.verdicts.delete(cid);
      waiter.resolve({ allow: false, reason: 'client left' });
    }
  }

  /**
   * A client that passed TLS (and auth-user-pass-verify): its pool address, or a refusal.
   * `byToken`: its auth-gen-token decided the login, so management-client-auth is not asked.
   */
  private admit(shard: number, authenticated: ClientAuth, byToken = false): void {
    const { options, registry, logger, host } = this;
    // username-as-common-name: the verified username stands for the certificate's name from
    // here on (status, client-config-dir, duplicate-cn).
    const asUsername = options.usernameAsCommonName && authenticated.username !== null && authenticated.username !== '';
    const message = asUsername ? { ...authenticated, commonName: authenticated.username! } : authenticated;
    if (!options.duplicateCn) {
      for (const other of registry.withCommonName(message.commonName)) {
        host.post(other.shard, { type: 'client-kill', peerId: other.peerId, message: null });
        const replaced = registry.release(other.peerId, other.stats?.bytesReceived ?? 0, other.stats?.bytesSent ?? 0);
        if (replaced !== undefined) this.disconnected(replaced, replaced.stats?.bytesReceived ?? 0, replaced.stats?.bytesSent ?? 0);
        logger.log(
          1,
          `MULTI: new connection by client '${message.commonName}' will cause previous active sessions by this client to be dropped`,
        );
      }
    }
    const request = {
      peerId: message.peerId,
      shard,
      commonName: message.commonName,
      username: message.username,
      realAddress: message.realAddress,
      certSerial: message.certSerial,
    };
    const first = registry.authorize(request);
    const refuse = (log: string, reason: string): void => {
      logger.log(1, log);
      host.post(shard, { type: 'client-reject', peerId: message.peerId, reason });
    };
    const accept = (admitted: Extract<AuthDecision, { ok: true }>, announce: boolean): void => {
      host.post(shard, { type: 'client-accept', peerId: message.peerId, assignment: admitted.assignment });
      if (announce) host.emit({ type: 'connect', cid: admitted.entry.cid, keyId: message.keyId, env: clientEnvironment(admitted.entry) });
      for (const address of learnedAddresses(admitted.entry))
        runLearnAddress(options, 'add', address, admitted.entry.commonName, clientEnvironment(admitted.entry), logger);
    };
    if (!first.ok) return refuse(first.log, first.reason);
    const askManagement = options.managementClientAuth && !byToken;
    // With management-client-auth its client hears of a client through >CLIENT:CONNECT only when
    // asked for a verdict; one a token admitted it hears of when it is established.
    const announce = !options.managementClientAuth;
    if (options.clientConnect === undefined && !askManagement) return accept(first, announce);
    // The client-connect script and the management client see the pool address already
    // chosen; what they add is applied by admitting the client again with it, same client id.
    this.pending.set(message.peerId, shard);
    const refusePending = (log: string, reason: string): void => {
      this.pending.delete(message.peerId);
      registry.release(message.peerId);
      refuse(log, reason);
    };
    const who = `${message.commonName}/${message.realAddress.address}:${message.realAddress.port}`;
    void (async (): Promise<void> => {
      let dynamic: CcdSettings | null = null;
      if (options.clientConnect !== undefined) {
        const result = await runClientConnect(
          options,
          { ...clientEnvironment(first.entry), ...peerInfoEnvironment(message.peerInfo) },
          logger,
        );
        if (!this.stillPending(message.peerId, shard)) return;
        if (!result.ok) return refusePending(result.log, '');
        dynamic = result.dynamic;
      }
      if (askManagement) {
        const session = message.authToken !== undefined ? tokenEnvironment(message.authToken) : {};
        host.emit({ type: 'connect', cid: first.entry.cid, keyId: message.keyId, env: { ...clientEnvironment(first.entry), ...session } });
        const verdict = await new Promise<ManagementVerdict>((resolve) =>
          this.verdicts.set(first.entry.cid, { keyId: message.keyId, peerId: message.peerId, resolve }),
        );
        if (!this.stillPending(message.peerId, shard)) return;
        if (!verdict.allow) return refusePending(`${who} MANAGEMENT: client-deny: ${verdict.reason}`, verdict.clientReason ?? '');
        if (verdict.config.trim() !== '') {
          const parsed = parseClientConfig(verdict.config, `management client-auth for '${message.commonName}'`);
          if (typeof parsed === 'string') return refusePending(`${who} MANAGEMENT: client-auth config refused: ${parsed}`, '');
          dynamic = mergeClientConfig(dynamic, parsed);
        }
      }
      this.pending.delete(message.peerId);
      if (dynamic === null) return accept(first, announce);
      registry.release(message.peerId);
      const again = registry.authorize({ ...request, dynamic, cid: first.entry.cid });
      if (!again.ok) return refuse(again.log, again.reason);
      accept(again, announce);
    })();
  }
}

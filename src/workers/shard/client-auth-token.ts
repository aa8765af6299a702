// One client instance's --auth-gen-token session (OpenVPN keeps it on the instance's tls_multi):
// the token its password may be, checked against the server's key; the session's first token,
// which every renewal keeps the session id and initial timestamp of; when to renew; and when the
// session's lifetime is over. The shard pushes the token on admission and a renewed one every
// renewal period, as a `PUSH_REPLY,auth-token ...` of its own (push.c send_push_reply_auth_token).
import {
  authTokenInitialSeconds,
  authTokenSessionId,
  checkAuthToken,
  generateAuthToken,
  isAuthToken,
  type AuthTokenState,
} from '../../shared/protocol/auth-token';
import type { ShardConfig } from '../../shared/shard-protocol';

type TokenSetting = ShardConfig['authGenToken'];

/** Token timestamps are wall-clock seconds: another server with the same secret checks them too. */
const wallSeconds = (): number => Math.floor(Date.now() / 1000);

export interface PresentedLogin {
  /** The username to go on with: emptied where the token held only for the empty username. */
  username: string;
  state: AuthTokenState;
  /** The session id of the token this client will get (OpenVPN's session_id variable). */
  sessionId: string;
  /** Why a token was not good, for the log; null otherwise. */
  problem: string | null;
}

/** What a timer tick brings: a renewed token to push, the end of the session's lifetime, or nothing. */
export type TokenDue = { kind: 'renewed'; token: string } | { kind: 'expired' } | null;

export class ClientAuthToken {
  private initial: string | null = null;
  private username = '';
  private renewAt = Infinity;
  /** The newest token this client was given (a repeated PUSH_REQUEST gets this one). */
  private newest: string | null = null;

  /** `setting`: the shard's current auth-gen-token settings (a hitless reload may change them). */
  constructor(private readonly setting: () => TokenSetting) {}

  /** The username and password of key method 2 (verify_user_pass with auth_token_generate). */
  presented(username: string, password: string): PresentedLogin {
    const setting = this.setting();
    const nowS = wallSeconds();
    let state: AuthTokenState = 'Initial';
    let problem: string | null = null;
    if (setting !== null && isAuthToken(password)) {
      const check = checkAuthToken(setting.key, username, password, nowS, setting);
      state = check.state;
      problem = check.problem;
      if (check.emptyUser) username = '';
      // A token whose HMAC held continues its session, expired or not (external-auth may still
      // admit it): same id and initial timestamp in what is sent back.
      if (check.hmacOk) this.initial = password;
    }
    if (setting !== null) this.initial ??= generateAuthToken(setting.key, username, nowS, null);
    this.username = username;
    return { username, state, sessionId: this.initial !== null ? authTokenSessionId(this.initial) : '', problem };
  }

  /** The token pushed on admission (null without auth-gen-token); renewals fall due a renewal period after `now` (monotonic ms). */
  issue(now: number): string | null {
    const setting = this.setting();
    if (setting === null || this.initial === null) {
      this.renewAt = Infinity;
      return null;
    }
    this.renewAt = now + setting.renewalS * 1000;
    this.newest = generateAuthToken(setting.key, this.username, wallSeconds(), this.initial);
    return this.newest;
  }

  /** The token a PUSH_REPLY sent now carries. */
  get current(): string | null {
    return this.newest;
  }

  /** When the next renewal is due (monotonic ms; Infinity before admission or without renewals). */
  get nextRenewal(): number {
    return this.renewAt;
  }

  /**
   * At a renewal: past the session's lifetime OpenVPN's next check of the token (at the next
   * renegotiation) fails and ends the session; shardvpn checks logins only at the first key
   * exchange, so the renewal that finds the lifetime over ends it instead of renewing.
   */
  due(now: number): TokenDue {
    if (now < this.renewAt) return null;
    const setting = this.setting();
    if (setting !== null && setting.lifetimeS > 0 && this.initial !== null) {
      if (wallSeconds() >= authTokenInitialSeconds(this.initial) + setting.lifetimeS) {
        this.renewAt = Infinity;
        return { kind: 'expired' };
      }
    }
    const token = this.issue(now);
    return token !== null ? { kind: 'renewed', token } : null;
  }
}

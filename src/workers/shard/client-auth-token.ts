// One client instance's --auth-gen-token session (OpenVPN keeps it on the instance's tls_multi):
// the token its password may be, checked against the server's key; the session's first token,
// which every renewal keeps the session id and initial timestamp of; and when to renew. The
// server's shard pushes the token on admission and a renewed one every renewal period, as a
// `PUSH_REPLY,auth-token ...` of its own (push.c send_push_reply_auth_token).
import { authTokenSessionId, checkAuthToken, generateAuthToken, isAuthToken, type AuthTokenState } from '../../shared/protocol/auth-token';
import type { ShardConfig } from '../../shared/shard-protocol';

type TokenSetting = NonNullable<ShardConfig['authGenToken']>;

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

export class ClientAuthToken {
  private initial: string | null = null;
  private username = '';
  private renewAt = Infinity;

  constructor(private readonly setting: TokenSetting) {}

  /** The username and password of key method 2 (verify_user_pass with auth_token_generate). */
  presented(username: string, password: string): PresentedLogin {
    const nowS = wallSeconds();
    let state: AuthTokenState = 'Initial';
    let problem: string | null = null;
    if (isAuthToken(password)) {
      const check = checkAuthToken(this.setting.key, username, password, nowS, this.setting, this.initial);
      state = check.state;
      problem = check.problem;
      if (check.emptyUser) username = '';
      // A good token continues its session: same id and initial timestamp in what we send back.
      if (check.hmacOk && !check.expired) this.initial ??= password;
    }
    this.initial ??= generateAuthToken(this.setting.key, username, nowS, null);
    this.username = username;
    return { username, state, sessionId: authTokenSessionId(this.initial), problem };
  }

  /** The token pushed on admission; renewals fall due a renewal period after `now` (monotonic ms). */
  issue(now: number): string | null {
    if (this.initial === null) return null;
    this.renewAt = now + this.setting.renewalS * 1000;
    return generateAuthToken(this.setting.key, this.username, wallSeconds(), this.initial);
  }

  /** When the next renewal is due (monotonic ms; Infinity before admission). */
  get nextRenewal(): number {
    return this.renewAt;
  }

  /** A renewed token when one is due at `now`, else null. */
  renewal(now: number): string | null {
    if (now < this.renewAt) return null;
    return this.issue(now);
  }
}

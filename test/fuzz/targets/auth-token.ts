// auth-gen-token session tokens a client sends as its password (auth-token.ts): whatever the
// bytes, checkAuthToken answers without throwing; only a token of the right shape can hold, and a
// good one keeps its session id and timestamps through a renewal.
import {
  authTokenInitialSeconds,
  authTokenSessionId,
  checkAuthToken,
  generateAuthToken,
  isAuthToken,
} from '../../../src/shared/protocol/auth-token';
import { Finding } from '../finding';

/** The key and the time the target checks with (make-corpus.ts seeds tokens made with them). */
export const FUZZ_TOKEN_KEY = Buffer.alloc(32, 0x5a);
export const FUZZ_TOKEN_NOW = 1_800_000_000;
const KEY = FUZZ_TOKEN_KEY;
const NOW = FUZZ_TOKEN_NOW;
const POLICY = { lifetimeS: 3600, renewalS: 600 };

export function fuzz(data: Buffer): void {
  // The first byte picks the username, the rest is the password as it arrives (latin1: any byte).
  const username = ['alice', '', 'bob'][data.length > 0 ? data[0]! % 3 : 0]!;
  const password = data.subarray(1).toString('latin1');
  const check = checkAuthToken(KEY, username, password, NOW, POLICY);
  if (check.hmacOk !== (check.state !== 'Invalid')) throw new Finding(`state ${check.state} with hmacOk ${check.hmacOk}`);
  if (!check.hmacOk) return;
  if (!isAuthToken(password)) throw new Finding('a password of the wrong shape held');
  // It held: a renewal made from it keeps the session and the start, and holds too.
  const initial = authTokenInitialSeconds(password);
  const renewed = generateAuthToken(KEY, check.emptyUser ? '' : username, NOW, password);
  if (authTokenSessionId(renewed) !== authTokenSessionId(password)) throw new Finding('renewal changed the session id');
  if (authTokenInitialSeconds(renewed) !== initial) throw new Finding('renewal changed the initial timestamp');
  if (!checkAuthToken(KEY, username, renewed, NOW, { lifetimeS: 0, renewalS: 600 }).hmacOk) throw new Finding('renewal does not hold');
}

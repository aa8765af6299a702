// PUSH_REPLY parsing (push-options.ts), one reply or several parts with push-continuation, with
// and without pull-filters. Hostile input is refused typed, never thrown; what parses builds into
// a reply that parses again, and rebuilding settles after one round.
import { isDeepStrictEqual } from 'node:util';
import { PushReplyCollector, buildPushReply, parsePushReply } from '../../../src/shared/protocol/push-options';
import type { PullFilter, PushOptions } from '../../../src/shared/protocol/push-options';
import { Finding, typed } from '../finding';

const REJECTS = ['not-push-reply', 'option-too-long', 'bad-option', 'rejected-by-filter', 'too-many-options', 'bad-continuation'];
const FILTERS: readonly PullFilter[] = [
  { action: 'ignore', text: 'route' },
  { action: 'reject', text: 'redirect-gateway' },
];

export function fuzz(data: Buffer): void {
  const text = data.toString('latin1');
  const messages = text.split('\0');
  typed(parsePushReply(messages, FILTERS), REJECTS, 'parsePushReply+filters');
  const c = new PushReplyCollector();
  for (const m of messages) typed(c.add(m), REJECTS, 'PushReplyCollector.add');
  const r = parsePushReply(messages);
  typed(r, REJECTS, 'parsePushReply');
  if (!r.ok) return;
  // Rebuilding may canonicalize once (a dhcp-option value keeps its words, not their quoting or
  // empty "" words, as OpenVPN's foreign_option joins them); after that it must be stable.
  const once = rebuild(r.options, 'parsed');
  if (once === null) return;
  const twice = rebuild(once, 'rebuilt');
  if (twice === null || !isDeepStrictEqual(twice, once)) throw new Finding('PUSH_REPLY options keep changing when rebuilt');
}

/** Options -> PUSH_REPLY -> options; null when the builder refuses them (not ours to push). */
function rebuild(options: PushOptions, what: string): PushOptions | null {
  const built = buildPushReply(options);
  if (!built.ok) return null;
  const again = parsePushReply(built.messages);
  if (!again.ok) throw new Finding(`parsePushReply refused the reply built from ${what} options: ${again.reason} ${again.detail}`);
  return again.options;
}

// PUSH_REPLY parsing (push-options.ts), one reply or several parts with push-continuation, with
// and without pull-filters. Hostile input is refused typed, never thrown; what parses builds into
// a reply that parses back to the same options.
import { isDeepStrictEqual } from 'node:util';
import { PushReplyCollector, buildPushReply, parsePushReply } from '../../../src/shared/protocol/push-options';
import type { PullFilter } from '../../../src/shared/protocol/push-options';
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
  const built = buildPushReply(r.options);
  if (!built.ok) return; // options we would not push ourselves (e.g. too long once rebuilt)
  const again = parsePushReply(built.messages);
  if (!again.ok) throw new Finding(`parsePushReply refused our own rebuilt reply: ${again.reason} ${again.detail}`);
  if (!isDeepStrictEqual(again.options, r.options)) throw new Finding('PUSH_REPLY options change when rebuilt');
}

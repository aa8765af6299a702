// The live progress of `shardvpn load`: what the bar shows in each phase, the plain lines written
// where stderr is not a terminal, and the bar drawn where it is (a stand-in terminal stream).
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';

import { barState, createProgressView, type ProgressStream } from '../src/main/load/progress';
import { progressLine } from '../src/main/load/report';

test('connect phase: the bar counts clients connected or failed of those requested', () => {
  assert.deepEqual(barState(2000, 10_000, 200, { started: 150, connected: 100, failed: 10 }, null), {
    phase: 'connect',
    value: 110,
    total: 200,
    detail: '110/200  connected 100  failed 10  in progress 40  50.0 conn/s',
  });
  // Nothing started yet: an empty bar, no rate.
  assert.deepEqual(barState(0, 10_000, 5, { started: 0, connected: 0, failed: 0 }, null), {
    phase: 'connect',
    value: 0,
    total: 5,
    detail: '0/5  connected 0  failed 0  in progress 0  0.0 conn/s',
  });
});

test('hold phase: the bar runs over the time left after the last client settled, and stops at the end', () => {
  const counts = { started: 200, connected: 198, failed: 2 };
  // Settled at 4 s of a 10 s run: 6 s to hold, 2 held at 6 s.
  assert.deepEqual(barState(6000, 10_000, 200, counts, 4000), {
    phase: 'hold',
    value: 2,
    total: 6,
    detail: '4 s left  connected 198/200  failed 2  49.5 conn/s',
  });
  // Past the planned end (the clients are closing): full, nothing left.
  assert.deepEqual(barState(11_500, 10_000, 200, counts, 4000), {
    phase: 'hold',
    value: 6,
    total: 6,
    detail: '0 s left  connected 198/200  failed 2  49.5 conn/s',
  });
  // Settled at the very end: a hold of nothing.
  assert.equal(barState(10_000, 10_000, 200, counts, 10_000).total, 0);
});

/** A stream that records what is written, a terminal or not. */
function recorder(isTTY: boolean): { stream: ProgressStream; text: () => string } {
  const stream = new PassThrough() as PassThrough & { isTTY?: boolean; columns?: number };
  stream.isTTY = isTTY;
  stream.columns = 160;
  let text = '';
  stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
  return { stream, text: () => text };
}

test('not a terminal: one plain live line per update, as before, and nothing more', async () => {
  const out = recorder(false);
  const view = createProgressView(out.stream, 200, 10_000);
  view.update(2000, { started: 200, connected: 100, failed: 0 }, null);
  view.update(10_000, { started: 200, connected: 198, failed: 2 }, 4000);
  view.stop();
  await new Promise(setImmediate);
  assert.equal(out.text(), `${progressLine(2000, 200, 200, 100, 0, null)}\n${progressLine(10_000, 200, 200, 198, 2, 4000)}\n`);
});

test('a terminal: a cli-progress bar over the clients, then over the hold, and the cursor back at the end', async () => {
  const out = recorder(true);
  const view = createProgressView(out.stream, 200, 10_000);
  view.update(2000, { started: 200, connected: 100, failed: 0 }, null);
  // The hold phase: the bar's last drawing (at stop) shows it.
  view.update(6000, { started: 200, connected: 198, failed: 2 }, 4000);
  view.stop();
  await new Promise(setImmediate);
  const raw = out.text();
  // eslint-disable-next-line no-control-regex -- the terminal escapes are what this removes
  const text = raw.replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1b[78]/g, '');
  assert.ok(text.includes(`connect |${'\u2588'.repeat(15)}${'\u2591'.repeat(15)}| 100/200  connected 100  failed 0`), text);
  assert.ok(text.includes(`hold    |${'\u2588'.repeat(10)}${'\u2591'.repeat(20)}| 4 s left  connected 198/200  failed 2`), text);
  assert.ok(raw.startsWith('\x1b7\x1b[?25l'), 'the cursor is saved and hidden while the bar runs');
  assert.ok(raw.includes('\x1b[?25h'), 'and shown again at the end');
  assert.ok(raw.endsWith('\n'), 'the bar gives the line back');
});

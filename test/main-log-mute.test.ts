// The log's verb filter and --mute as OpenVPN's error.c applies them: after N consecutive lines of
// one category the rest are held back, and the next line of another category is preceded by a
// count of what was suppressed; a line without a category (OpenVPN's mute level 0) never is.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Logger } from '../src/shared/log';

function capture(verb: number, mute: number): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const logger = new Logger(verb, (line) => lines.push(line.replace(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d /, '')));
  logger.mute = mute;
  return { logger, lines };
}

test('mute 2: a burst of one category shows two lines, a note, then a count when the category changes', () => {
  const { logger, lines } = capture(3, 2);
  for (let i = 1; i <= 5; i++) logger.log(3, `drop ${i}`, 'control-drop');
  logger.log(1, 'client connected');
  logger.log(3, 'drop 6', 'control-drop');
  assert.deepEqual(lines, [
    'drop 1',
    'drop 2',
    'NOTE: --mute triggered...',
    '3 variation(s) on previous 2 message(s) suppressed by --mute',
    'client connected',
    'drop 6',
  ]);
});

test('mute 3: lines without a category are never held back, and each ends a muted run', () => {
  const { logger, lines } = capture(3, 3);
  for (let i = 1; i <= 8; i++) logger.log(1, `step ${i}`);
  for (let i = 1; i <= 5; i++) logger.log(3, `drop ${i}`, 'control-drop');
  logger.log(1, 'Initialization Sequence Completed');
  assert.deepEqual(lines, [
    ...[1, 2, 3, 4, 5, 6, 7, 8].map((i) => `step ${i}`),
    'drop 1',
    'drop 2',
    'drop 3',
    'NOTE: --mute triggered...',
    '2 variation(s) on previous 3 message(s) suppressed by --mute',
    'Initialization Sequence Completed',
  ]);
});

test('mute 0 lets everything through; lines above verb count for nothing', () => {
  const off = capture(3, 0);
  for (let i = 0; i < 4; i++) off.logger.log(3, 'same', 'x');
  assert.equal(off.lines.length, 4);
  const quiet = capture(1, 1);
  quiet.logger.log(1, 'a');
  for (let i = 0; i < 5; i++) quiet.logger.log(4, 'debug detail');
  quiet.logger.log(1, 'b', 'other');
  assert.deepEqual(quiet.lines, ['a', 'b']);
});

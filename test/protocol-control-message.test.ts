// Control-channel text messages (control-message.ts): NUL framing over a TLS byte stream and
// classification in OpenVPN's prefix order.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  ControlMessageReader,
  encodeControlMessage,
  formatControlMessage,
  parseControlMessage,
  sanitizeControlMessage,
} from '../src/shared/protocol/control-message';
import type { ControlMessage } from '../src/shared/protocol/control-message';

test('encode: ASCII plus the terminating NUL; refuses what OpenVPN would drop', () => {
  assert.deepEqual(encodeControlMessage('PUSH_REQUEST'), Buffer.from('PUSH_REQUEST\0'));
  assert.throws(() => encodeControlMessage('A\nB'), RangeError);
  assert.throws(() => encodeControlMessage('é'), RangeError);
  assert.throws(() => encodeControlMessage('x'.repeat(1024)), RangeError);
  assert.equal(encodeControlMessage('x'.repeat(1023)).length, 1024);
});

test('reader: several messages per chunk, messages split across chunks, CR/LF chomped', () => {
  const r = new ControlMessageReader();
  assert.deepEqual(r.push(Buffer.from('PUSH_REQUEST\0INFO,hello\r\n\0PUSH_RE')), ['PUSH_REQUEST', 'INFO,hello']);
  assert.deepEqual(r.push(Buffer.from('PLY,ping 10')), []);
  assert.deepEqual(r.push(Buffer.from(',ping-restart 60\0')), ['PUSH_REPLY,ping 10,ping-restart 60']);
  assert.deepEqual(r.push(Buffer.from('\0\0')), [], 'empty messages are skipped');
  assert.deepEqual(r.push(Buffer.from('BAD\x01X\0EXIT\0')), ['EXIT']);
  assert.equal(r.invalid, 1);
});

test('reader: an unterminated message longer than 2048 bytes is dropped up to its NUL', () => {
  const r = new ControlMessageReader();
  assert.deepEqual(r.push(Buffer.alloc(2000, 0x41)), []);
  assert.deepEqual(r.push(Buffer.alloc(100, 0x41)), []);
  assert.deepEqual(r.push(Buffer.from('AAAA\0HALT\0')), ['HALT']);
  assert.equal(r.oversized, 1);
  assert.deepEqual(r.push(Buffer.concat([Buffer.alloc(3000, 0x42), Buffer.from('\0RESTART\0')])), ['RESTART']);
  assert.equal(r.oversized, 2);
});

test('classification in OpenVPN order, with arguments', () => {
  const cases: [string, ControlMessage][] = [
    ['PUSH_REQUEST', { kind: 'push-request' }],
    ['PUSH_REPLY', { kind: 'push-reply', body: '' }],
    ['PUSH_REPLY,ping 10', { kind: 'push-reply', body: ',ping 10' }],
    ['PUSH_REPLYX', { kind: 'unknown', text: 'PUSH_REPLYX' }],
    ['PUSH_UPDATE,route 1.2.3.4', { kind: 'unknown', text: 'PUSH_UPDATE,route 1.2.3.4' }],
    ['AUTH_FAILED', { kind: 'auth-failed' }],
    ['AUTH_FAILED,bad password', { kind: 'auth-failed', reason: 'bad password' }],
    ['AUTH_FAILED,SESSION:token expired', { kind: 'auth-failed', reason: 'SESSION:token expired' }],
    [
      'AUTH_FAILED,TEMP[backoff 30,advance remote]:try later',
      {
        kind: 'auth-failed',
        reason: 'TEMP[backoff 30,advance remote]:try later',
        temp: { backoffS: 30, advance: 'remote', message: 'try later' },
      },
    ],
    ['AUTH_FAILED,TEMP', { kind: 'auth-failed', reason: 'TEMP', temp: { message: '' } }],
    ['RESTART', { kind: 'restart', flags: { keepPassword: false, nextRemote: false }, text: '' }],
    ['RESTART,[N]', { kind: 'restart', flags: { keepPassword: false, nextRemote: true }, text: '[N]' }],
    ['RESTART,[PN]server going down', { kind: 'restart', flags: { keepPassword: true, nextRemote: true }, text: '[PN]server going down' }],
    ['HALT,bye', { kind: 'halt', flags: { keepPassword: false, nextRemote: false }, text: 'bye' }],
    ['INFO_PRE,WEB_AUTH::https://x', { kind: 'info-pre', text: 'WEB_AUTH::https://x' }],
    ['INFO,hello', { kind: 'info', text: 'hello' }],
    ['CR_RESPONSE,YWJj', { kind: 'cr-response', response: 'YWJj' }],
    ['AUTH_PENDING', { kind: 'auth-pending', keywords: [] }],
    ['AUTH_PENDING,timeout 300', { kind: 'auth-pending', timeoutS: 300, keywords: ['timeout 300'] }],
    ['AUTH_PENDING,timeout x', { kind: 'auth-pending', keywords: ['timeout x'] }],
    ['EXIT', { kind: 'exit' }],
    ['HELLO', { kind: 'unknown', text: 'HELLO' }],
  ];
  for (const [text, msg] of cases) assert.deepEqual(parseControlMessage(text), msg, text);
});

test('format round-trips what parse understood', () => {
  const texts = [
    'PUSH_REQUEST',
    'PUSH_REPLY',
    'PUSH_REPLY,route-gateway 10.8.0.1,ping 10',
    'AUTH_FAILED',
    'AUTH_FAILED,Data channel cipher negotiation failed (no shared cipher)',
    'AUTH_FAILED,TEMP[backoff 30,advance remote]:try later',
    'RESTART',
    'RESTART,[N]',
    'HALT,bye',
    'INFO_PRE,CR_TEXT:E,R:challenge',
    'INFO,hello',
    'CR_RESPONSE,YWJj',
    'AUTH_PENDING,timeout 300',
    'AUTH_PENDING',
    'EXIT',
  ];
  for (const t of texts) assert.equal(formatControlMessage(parseControlMessage(t)), t);
  assert.equal(formatControlMessage({ kind: 'restart', flags: { keepPassword: false, nextRemote: true }, text: '' }), 'RESTART,[N]');
});

test('sanitize: auth-token values, session tokens and echo texts leave the log as the stock client writes them', () => {
  const token = `SESS_ID_AT_${'A'.repeat(80)}`;
  assert.equal(
    sanitizeControlMessage(`PUSH_REPLY,route 10.0.0.0 255.0.0.0,auth-token ${token},echo forward this,cipher AES-256-GCM`),
    'PUSH_REPLY,route 10.0.0.0 255.0.0.0,auth-tokenSESS_ID,echo,cipher AES-256-GCM',
  );
  assert.equal(sanitizeControlMessage(`PUSH_REPLY,auth-token ${token}`), 'PUSH_REPLY,auth-tokenSESS_ID');
  assert.equal(sanitizeControlMessage('PUSH_REPLY,route 10.1.0.0 255.255.0.0'), 'PUSH_REPLY,route 10.1.0.0 255.255.0.0');
});

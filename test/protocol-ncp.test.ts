// Cipher negotiation (ncp.ts) as a 2.6 server and client decide it.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  DEFAULT_DATA_CIPHERS,
  NCP_FAILED_CLIENT_REASON,
  aeadCipherName,
  checkClientCipher,
  normalizeCipherName,
  occStringCipher,
  parseDataCiphers,
  peerNcpList,
  peerSupportsNcp,
  selectServerCipher,
} from '../src/shared/protocol/ncp';
import { negotiatePushedDataChannel } from '../src/shared/session/pushed-data-channel';

const CLIENT_26 =
  'IV_VER=2.6.14\nIV_PLAT=linux\nIV_TCPNL=1\nIV_MTU=1600\nIV_NCP=2\nIV_CIPHERS=AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305\nIV_PROTO=990\n';

test('cipher names are normalised case-insensitively, with OpenSSL aliases', () => {
  assert.equal(normalizeCipherName('aes-256-gcm'), 'AES-256-GCM');
  assert.equal(normalizeCipherName('AeS-128-gCm'), 'AES-128-GCM');
  assert.equal(normalizeCipherName('id-aes256-GCM'), 'AES-256-GCM');
  assert.equal(normalizeCipherName('ChaCha20-Poly1305'), 'CHACHA20-POLY1305');
  assert.equal(normalizeCipherName('bf-cbc'), 'BF-CBC');
  assert.equal(normalizeCipherName('none'), 'none');
  assert.equal(normalizeCipherName('ROT13'), null);
  assert.equal(aeadCipherName('aes-128-gcm'), 'AES-128-GCM');
  assert.equal(aeadCipherName('AES-256-CBC'), null);
});

test('--data-ciphers: normalised, ?optional dropped, unsupported refused', () => {
  assert.deepEqual(parseDataCiphers('aes-256-gcm:AES-128-GCM:chacha20-poly1305'), { ok: true, ciphers: [...DEFAULT_DATA_CIPHERS] });
  assert.deepEqual(parseDataCiphers('AES-256-GCM:?AES-256-CBC:?FOO'), { ok: true, ciphers: ['AES-256-GCM'] });
  assert.equal(parseDataCiphers('AES-256-GCM:AES-256-CBC').ok, false);
  assert.deepEqual(parseDataCiphers('AES-256-CBC', ['AES-256-CBC']), { ok: true, ciphers: ['AES-256-CBC'] });
  assert.equal(parseDataCiphers('').ok, false);
});

test('peer lists: IV_CIPHERS, else IV_NCP=2 means AES-256-GCM:AES-128-GCM, else nothing', () => {
  assert.deepEqual(peerNcpList(CLIENT_26), ['AES-256-GCM', 'AES-128-GCM', 'CHACHA20-POLY1305']);
  assert.deepEqual(peerNcpList('IV_VER=2.4.9\nIV_NCP=2\n'), ['AES-256-GCM', 'AES-128-GCM']);
  assert.deepEqual(peerNcpList('IV_VER=2.3.18\n'), []);
  assert.deepEqual(peerNcpList(null), []);
  assert.equal(peerSupportsNcp(CLIENT_26), true);
  assert.equal(peerSupportsNcp('IV_VER=2.3.18\n'), false);
  assert.equal(peerSupportsNcp('IV_NCPX=2\nUV_IV_CIPHERS=1\n'), false, 'names match whole variables');
});

test('server: first of OUR list that the client supports', () => {
  assert.deepEqual(selectServerCipher({ dataCiphers: DEFAULT_DATA_CIPHERS, peerInfo: CLIENT_26 }), {
    ok: true,
    cipher: 'AES-256-GCM',
    push: true,
    via: 'ncp',
  });
  assert.deepEqual(
    selectServerCipher({ dataCiphers: ['CHACHA20-POLY1305', 'AES-128-GCM'], peerInfo: 'IV_CIPHERS=AES-128-GCM:CHACHA20-POLY1305\n' }),
    { ok: true, cipher: 'CHACHA20-POLY1305', push: true, via: 'ncp' },
  );
  assert.deepEqual(selectServerCipher({ dataCiphers: ['AES-128-GCM'], peerInfo: 'IV_NCP=2\n' }), {
    ok: true,
    cipher: 'AES-128-GCM',
    push: true,
    via: 'ncp',
  });
});

test('server: old clients by their OCC cipher, fallback only without any cipher info', () => {
  // 2.3 client with cipher AES-256-GCM in its OCC string: no NCP, so nothing is pushed.
  assert.deepEqual(selectServerCipher({ dataCiphers: DEFAULT_DATA_CIPHERS, peerInfo: 'IV_VER=2.3.18\n', occCipher: 'aes-256-gcm' }), {
    ok: true,
    cipher: 'AES-256-GCM',
    push: false,
    via: 'occ',
  });
  // The OCC cipher is ignored when the client sent IV_CIPHERS.
  const r = selectServerCipher({
    dataCiphers: ['AES-128-GCM'],
    peerInfo: 'IV_CIPHERS=CHACHA20-POLY1305\n',
    occCipher: 'AES-128-GCM',
    fallback: 'AES-128-GCM',
  });
  assert.equal(r.ok, false);
  assert.equal(!r.ok && r.reason, 'no-shared-cipher');
  assert.equal(!r.ok && r.clientReason, NCP_FAILED_CLIENT_REASON);
  // An OCC cipher we do not run: no fallback, because the client told us its cipher.
  assert.equal(
    selectServerCipher({ dataCiphers: DEFAULT_DATA_CIPHERS, peerInfo: null, occCipher: 'BF-CBC', fallback: 'AES-256-GCM' }).ok,
    false,
  );
  // Nothing known about the client: fallback if set.
  assert.deepEqual(selectServerCipher({ dataCiphers: DEFAULT_DATA_CIPHERS, peerInfo: 'IV_VER=2.3\n', fallback: 'aes-128-gcm' }), {
    ok: true,
    cipher: 'AES-128-GCM',
    push: false,
    via: 'fallback',
  });
  const none = selectServerCipher({ dataCiphers: DEFAULT_DATA_CIPHERS, peerInfo: 'IV_VER=2.3\n' });
  assert.equal(!none.ok && none.reason, 'no-cipher-info');
});

test('client: the pushed cipher must be in our data-ciphers', () => {
  const ours = ['AES-256-GCM', 'AES-128-GCM'];
  assert.deepEqual(checkClientCipher({ dataCiphers: ours, pushedCipher: 'AES-128-GCM' }), { ok: true, cipher: 'AES-128-GCM', via: 'push' });
  assert.equal(checkClientCipher({ dataCiphers: ours, pushedCipher: 'CHACHA20-POLY1305' }).ok, false);
  assert.equal(checkClientCipher({ dataCiphers: ours, pushedCipher: 'ROT13' }).ok, false);
  assert.deepEqual(checkClientCipher({ dataCiphers: ours, occCipher: 'aes-256-gcm' }), { ok: true, cipher: 'AES-256-GCM', via: 'occ' });
  assert.equal(checkClientCipher({ dataCiphers: ours, occCipher: 'BF-CBC', fallback: 'AES-256-GCM' }).ok, false);
  assert.deepEqual(checkClientCipher({ dataCiphers: ours, fallback: 'AES-256-GCM' }), { ok: true, cipher: 'AES-256-GCM', via: 'fallback' });
  assert.equal(checkClientCipher({ dataCiphers: ours }).ok, false);
});

test('OCC string cipher extraction', () => {
  assert.equal(
    occStringCipher(
      'V4,dev-type tun,link-mtu 1559,tun-mtu 1500,proto UDPv4,cipher AES-256-GCM,auth [null-digest],keysize 256,key-method 2,tls-server',
    ),
    'AES-256-GCM',
  );
  assert.equal(occStringCipher('V4,dev-type tun,cipher [null-cipher]'), null);
  assert.equal(occStringCipher('V4,dev-type tun'), null);
});

test('the data channel of a client from a PUSH_REPLY: cipher checked against data-ciphers, peer-id, tls-ekm, cc-exit', () => {
  const local = { dataCiphers: ['AES-256-GCM', 'aes-128-gcm'], occCipher: null, fallback: null, auth: 'SHA256' };
  assert.deepEqual(negotiatePushedDataChannel({ cipher: 'AES-128-GCM', peerId: 7, protocolFlags: ['cc-exit', 'tls-ekm'] }, local), {
    ok: true,
    channel: { cipher: 'AES-128-GCM', auth: 'SHA256', peerId: 7, keyDerivation: 'tls-ekm', ccExit: true },
  });
  assert.deepEqual(negotiatePushedDataChannel({ cipher: 'AES-256-GCM', keyDerivation: 'tls-ekm' }, local), {
    ok: true,
    channel: { cipher: 'AES-256-GCM', auth: 'SHA256', peerId: null, keyDerivation: 'tls-ekm', ccExit: false },
  });
  // No pushed cipher: the server's OCC cipher, then the fallback.
  assert.deepEqual(negotiatePushedDataChannel({}, { ...local, occCipher: 'AES-256-GCM' }), {
    ok: true,
    channel: { cipher: 'AES-256-GCM', auth: 'SHA256', peerId: null, keyDerivation: 'prf', ccExit: false },
  });
  const pushedOther = negotiatePushedDataChannel({ cipher: 'CHACHA20-POLY1305' }, local);
  assert.equal(pushedOther.ok, false);
  assert.equal(!pushedOther.ok && pushedOther.reason, 'pushed-cipher-not-allowed');
  assert.deepEqual(negotiatePushedDataChannel({}, { ...local, fallback: 'AES-256-CBC' }), {
    ok: true,
    channel: { cipher: 'AES-256-CBC', auth: 'SHA256', peerId: null, keyDerivation: 'prf', ccExit: false },
  });
  assert.deepEqual(negotiatePushedDataChannel({}, { ...local, fallback: 'CAMELLIA-128-CBC' }), {
    ok: false,
    reason: 'unsupported-cipher',
    detail: "cipher 'CAMELLIA-128-CBC' is not supported",
  });
});

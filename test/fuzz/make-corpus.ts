// Writes the seed corpora in test/fuzz/corpus/<target>/ (committed; run again only to refresh
// them: `node dist/test/fuzz/make-corpus.js`). Seeds are small real inputs: the first packets of
// the real openvpn 2.6 client under each control-channel wrapping, keyed with the fuzz targets'
// fixed keys so their WKc and HMACs check out; key files openvpn --genkey wrote; the sample
// configs of config-samples.ts; and messages built by shardvpn's own encoders.
import { generateAuthToken } from '../../src/shared/protocol/auth-token';
import { FUZZ_TOKEN_KEY, FUZZ_TOKEN_NOW } from './targets/auth-token';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildControlPacket, buildEarlyNegFlags } from '../../src/shared/protocol/packet';
import { P_ACK_V1, P_CONTROL_HARD_RESET_SERVER_V2, P_CONTROL_V1 } from '../../src/shared/protocol/opcodes';
import { formatStaticKey, formatTlsCryptV2ServerKey } from '../../src/shared/protocol/static-key';
import { encodeControlMessage } from '../../src/shared/protocol/control-message';
import { buildPushReply } from '../../src/shared/protocol/push-options';
import { buildPeerInfo, encodeKeyMethod2 } from '../../src/shared/protocol/key-method2';
import { buildOccMessage } from '../../src/shared/protocol/occ';
import { writePingMessage } from '../../src/shared/protocol/ping';
import { frameForStream } from '../../src/shared/protocol/stream-framing';
import { makeTestPki, selfSignedCert } from '../../lab/test-pki';
import { samples } from '../config-samples';
import { fixedKey2, fixedServerKey } from './keys';
import { ROOT } from './jazzer-run';

const CORPUS = path.join(ROOT, 'test/fuzz/corpus');

function seed(target: string, name: string, data: Buffer | string): void {
  const dir = path.join(CORPUS, target);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, name), data);
}

/** The first datagram the real openvpn client sends to a UDP port on loopback. */
async function openvpnFirstPacket(dir: string, extra: readonly string[]): Promise<Buffer> {
  const cert = selfSignedCert(dir);
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve));
  const got = new Promise<Buffer>((resolve) => sock.once('message', (msg) => resolve(msg)));
  const args = ['--client', '--dev', 'null', '--proto', 'udp', '--remote', '127.0.0.1', String(sock.address().port), '--nobind'];
  args.push('--verb', '0', '--connect-retry-max', '1', '--ca', cert.certFile, '--cert', cert.certFile, '--key', cert.keyFile, ...extra);
  const child = spawn('openvpn', args, { stdio: 'ignore' });
  const timeout = new Promise<never>((_, reject) =>
    setTimeout(() => reject(new Error(`no packet from openvpn ${extra.join(' ')}`)), 10_000).unref(),
  );
  try {
    return await Promise.race([got, timeout]);
  } finally {
    if (child.pid !== undefined) child.kill('SIGKILL');
    sock.close();
  }
}

function sha(b: Buffer | string): string {
  return createHash('sha1').update(b).digest('hex').slice(0, 12);
}

async function main(): Promise<void> {
  fs.rmSync(CORPUS, { recursive: true, force: true });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shardvpn-fuzz-corpus-'));
  try {
    // Keys in OpenVPN's formats, holding the fuzz targets' fixed keys.
    const taKey = path.join(dir, 'ta.key');
    fs.writeFileSync(taKey, formatStaticKey(fixedKey2(1)));
    const tcKey = path.join(dir, 'tc.key');
    fs.writeFileSync(tcKey, formatStaticKey(fixedKey2(3)));
    const v2Server = path.join(dir, 'v2-server.key');
    fs.writeFileSync(v2Server, formatTlsCryptV2ServerKey(fixedServerKey()));
    const v2Client = path.join(dir, 'v2-client.key');
    const gen = spawnSync('openvpn', ['--tls-crypt-v2', v2Server, '--genkey', 'tls-crypt-v2-client', v2Client], { encoding: 'utf8' });
    if (gen.status !== 0) throw new Error(`openvpn --genkey tls-crypt-v2-client: ${gen.stderr}${gen.stdout}`);

    const plain = await openvpnFirstPacket(dir, []);
    const tlsAuth = await openvpnFirstPacket(dir, ['--tls-auth', taKey, '1', '--auth', 'SHA256']);
    const tlsCrypt = await openvpnFirstPacket(dir, ['--tls-crypt', tcKey]);
    const tlsCryptV2 = await openvpnFirstPacket(dir, ['--tls-crypt-v2', v2Client]);
    for (const [name, p] of [
      ['openvpn-hard-reset-client-v2', plain],
      ['openvpn-hard-reset-tls-auth', tlsAuth],
      ['openvpn-hard-reset-tls-crypt', tlsCrypt],
      ['openvpn-hard-reset-client-v3-tls-crypt-v2', tlsCryptV2],
    ] as const) {
      seed('packet', `${name}.bin`, p);
      seed('tcp-framing', `${name}.bin`, frameForStream(p));
    }
    seed('tls-auth', 'openvpn-hard-reset-tls-auth.bin', tlsAuth);
    seed('tls-auth', 'openvpn-hard-reset-plain.bin', plain);
    seed('tls-crypt', 'openvpn-hard-reset-tls-crypt.bin', tlsCrypt);
    seed('tls-crypt', 'openvpn-hard-reset-plain.bin', plain);
    seed('tls-crypt-v2', 'openvpn-hard-reset-client-v3.bin', tlsCryptV2);
    seed('tls-crypt-v2', 'openvpn-wkc.bin', tlsCryptV2.subarray(tlsCryptV2.length - tlsCryptV2.readUInt16BE(tlsCryptV2.length - 2)));

    // Key files as openvpn --genkey writes them.
    for (const kind of ['secret', 'tls-crypt', 'tls-crypt-v2-server', 'auth-token']) {
      const f = path.join(dir, `${kind}.key`);
      const r = spawnSync('openvpn', ['--genkey', kind, f], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`openvpn --genkey ${kind}: ${r.stderr}`);
      seed('key-files', `openvpn-genkey-${kind}.key`, fs.readFileSync(f));
    }
    seed('key-files', 'openvpn-genkey-tls-crypt-v2-client.key', fs.readFileSync(v2Client));

    // Control packets from the codec, alone and as sequences for the reliability layer.
    const sidA = Buffer.from('0102030405060708', 'hex');
    const sidB = Buffer.from('a1a2a3a4a5a6a7a8', 'hex');
    const serverReset = buildControlPacket({
      kind: 'message',
      opcode: P_CONTROL_HARD_RESET_SERVER_V2,
      keyId: 0,
      sessionId: sidB,
      acks: [0],
      remoteSessionId: sidA,
      messageId: 0,
      payload: buildEarlyNegFlags(1),
    });
    const control = (id: number, acks: number[]): Buffer =>
      buildControlPacket({
        kind: 'message',
        opcode: P_CONTROL_V1,
        keyId: 0,
        sessionId: sidA,
        acks,
        remoteSessionId: acks.length ? sidB : null,
        messageId: id,
        payload: Buffer.from(`tls record ${id}`),
      });
    const ack = buildControlPacket({ kind: 'ack', opcode: P_ACK_V1, keyId: 0, sessionId: sidA, acks: [0, 1, 2], remoteSessionId: sidB });
    seed('packet', 'server-reset.bin', serverReset);
    seed('packet', 'control-v1.bin', control(1, [0]));
    seed('packet', 'ack-v1.bin', ack);
    const sep = Buffer.from([0xff]);
    seed('reliable', 'in-order.bin', Buffer.concat([Buffer.from([0, 0, 0xff]), control(0, []), sep, control(1, [0]), sep, ack]));
    seed(
      'reliable',
      'out-of-order.bin',
      Buffer.concat([Buffer.from([0, 0, 0xff]), control(2, []), sep, control(0, [1]), sep, control(1, []), sep, control(1, [])]),
    );
    seed('reliable', 'openvpn-hard-reset.bin', Buffer.concat([Buffer.from([0, 0, 0xff]), plain]));

    // Control-channel messages.
    const reply = buildPushReply({
      routes: [{ network: '10.9.0.0', netmask: '255.255.0.0' }],
      peerId: 7,
      cipher: 'AES-256-GCM',
      topology: 'subnet',
      ifconfig: { local: '10.8.0.2', remoteOrNetmask: '255.255.255.0' },
      ping: 10,
      pingRestart: 120,
    });
    if (!reply.ok) throw new Error(`buildPushReply: ${reply.detail}`);
    const replyText = reply.messages[0]!;
    const messages = [
      'PUSH_REQUEST',
      replyText,
      'AUTH_FAILED',
      'AUTH_FAILED,TEMP[backoff 5,advance remote]:try later',
      'RESTART,[N]server restarting',
      'HALT,bye',
      'INFO_PRE,WEB_AUTH::https://example.invalid/x',
      'AUTH_PENDING,timeout 30',
      'CR_RESPONSE,c2VjcmV0',
      'EXIT',
    ];
    seed('control-message', 'session.bin', Buffer.concat(messages.map((m) => encodeControlMessage(m))));
    for (const m of messages) seed('control-message', `${sha(m)}.bin`, encodeControlMessage(m));
    const pushes = [
      replyText,
      'PUSH_REPLY,dhcp-option DNS 1.1.1.1,dhcp-option DNS 1.0.0.1,redirect-gateway def1 bypass-dhcp,route-gateway 10.8.0.1,topology subnet,ping 10,ping-restart 120,ifconfig 10.8.0.2 255.255.255.0,peer-id 0,cipher AES-256-GCM,protocol-flags cc-exit tls-ekm dyn-tls-crypt,tun-mtu 1500',
      'PUSH_REPLY,route 10.9.0.0 255.255.0.0,push-continuation 2\0PUSH_REPLY,ifconfig-ipv6 fd00::1000/64 fd00::1,route-ipv6 2000::/3,push-continuation 1',
      'PUSH_REPLY,compress lz4-v2,comp-lzo no,key-derivation tls-ekm,auth-tokenSESS_ID,explicit-exit-notify 1,setenv-safe X "a b"',
      // OpenVPN 2.6's dns options, block-ipv6, route-ipv6-gateway and the timer options.
      'PUSH_REPLY,dns server 0 address 10.8.0.53 [fd00::53]:853,dns server 0 dnssec yes,dns server 1 resolve-domains corp.example,dns server 1 address 10.8.0.54,dns server 1 transport DoT,dns server 1 sni dns.example,dns search-domains a.example b.example,block-ipv6,route-ipv6-gateway fd00::1,session-timeout 3600,redirect-gateway ipv6',
    ];
    for (const p of pushes) seed('push-reply', `${sha(p)}.txt`, p);

    // Session tokens as a client sends them (first byte: the username's index): a fresh one, a
    // renewal, one for the empty username, an expired one.
    const first = generateAuthToken(FUZZ_TOKEN_KEY, 'alice', FUZZ_TOKEN_NOW - 10, null);
    seed('auth-token', 'alice-fresh.txt', `\x00${first}`);
    seed('auth-token', 'alice-renewed.txt', `\x00${generateAuthToken(FUZZ_TOKEN_KEY, 'alice', FUZZ_TOKEN_NOW - 5, first)}`);
    seed('auth-token', 'empty-user.txt', `\x01${generateAuthToken(FUZZ_TOKEN_KEY, '', FUZZ_TOKEN_NOW - 10, null)}`);
    seed('auth-token', 'alice-expired.txt', `\x00${generateAuthToken(FUZZ_TOKEN_KEY, 'alice', FUZZ_TOKEN_NOW - 5000, null)}`);

    // Key method 2 and peer-info as OpenVPN 2.6 clients send them.
    const peerInfo = buildPeerInfo({
      version: '2.6.14',
      platform: 'linux',
      proto: 990,
      ncp: 2,
      ciphers: ['AES-256-GCM', 'AES-128-GCM', 'CHACHA20-POLY1305'],
      extra: [
        ['IV_LZO_STUB', '1'],
        ['IV_COMP_STUB', '1'],
        ['IV_GUI_VER', 'OpenVPN_GUI_11'],
      ],
    });
    const keySource = { preMaster: Buffer.alloc(48, 1), random1: Buffer.alloc(32, 2), random2: Buffer.alloc(32, 3) };
    const options =
      'V4,dev-type tun,link-mtu 1559,tun-mtu 1500,proto UDPv4,cipher AES-256-CBC,auth SHA1,keysize 256,key-method 2,tls-client';
    seed('peer-info', 'client-km2.bin', encodeKeyMethod2({ keySource, options, username: 'alice', password: 'secret', peerInfo }, true));
    seed(
      'peer-info',
      'server-km2.bin',
      encodeKeyMethod2(
        { keySource, options: options.replace('tls-client', 'tls-server'), username: null, password: null, peerInfo: null },
        false,
      ),
    );
    seed('peer-info', 'peer-info.txt', peerInfo);
    seed('client-connect', 'peer-info.txt', peerInfo);

    // Ping and OCC payloads, under each compression framing byte.
    const ping = Buffer.alloc(16);
    writePingMessage(ping, 0);
    const occ = [
      buildOccMessage({ op: 'request' }),
      buildOccMessage({ op: 'reply', options }),
      buildOccMessage({ op: 'mtu-load-request', size: 1400 }),
      buildOccMessage({ op: 'mtu-reply', maxRecv: 1500, maxSend: 1500 }),
      buildOccMessage({ op: 'exit' }),
    ];
    seed('occ', 'ping.bin', ping);
    seed('occ', 'ping-lzo-prefix.bin', Buffer.concat([Buffer.from([0xfa]), ping]));
    seed('occ', 'ping-v2.bin', Buffer.concat([Buffer.from([0x50, 0x00]), ping]));
    for (const o of occ) seed('occ', `occ-${o[16]}.bin`, o);
    seed('tcp-framing', 'two-packets.bin', Buffer.concat([frameForStream(ping), frameForStream(occ[1]!)]));

    // Data channel: suite byte, then parts (mode byte + payload) separated by 0xff.
    for (const [target, count] of [
      ['data-channel-aead', 3],
      ['data-channel-cbc', 4],
    ] as const) {
      for (let s = 0; s < count; s++) {
        for (const v2 of [0, 0x10]) {
          const parts = [
            Buffer.concat([Buffer.from([0x01]), ping]),
            Buffer.from([0x05, 0x45, 0x00, 0x00, 0x54]),
            Buffer.from([0x48, 1, 2, 3]),
          ];
          seed(
            target,
            `suite${s}${v2 ? '-v2' : ''}.bin`,
            Buffer.concat([Buffer.from([s | v2]), ...parts.flatMap((p, i) => (i ? [Buffer.from([0xff]), p] : [p]))]),
          );
        }
      }
    }

    // Configs, CCD files, client-connect output.
    for (const s of samples) seed('config', `${s.name.replace(/[^A-Za-z0-9.-]/g, '_')}-${sha(s.text)}.conf`, s.text);
    const ccds = [
      'ifconfig-push 10.8.0.9 255.255.255.0\niroute 192.168.50.0 255.255.255.0\npush "route 192.168.60.0 255.255.255.0"\n',
      'push-reset\npush "redirect-gateway def1"\nifconfig-ipv6-push fd00::9/64 fd00::1\niroute-ipv6 fd01::/64\n',
      'disable\n',
    ];
    for (const c of ccds) {
      seed('ccd', `${sha(c)}.txt`, c);
      seed('client-connect', `${sha(c)}.txt`, c);
    }

    // Management sessions: first byte (bit 0: password asked), then what the client types.
    const sessions = [
      '\x00help\nstatus\nstatus 2\nstatus 3\nversion\npid\nload-stats\nnclients\nstate\nstate all\nlog on all\nbytecount 5\nverb 4\nquit\n',
      '\x01hunter2\nkill alice\nkill 198.51.100.7:51820\nclient-kill 0 HALT\nsignal SIGUSR1\nexit\n',
      '\x00client-auth 1 0\npush "route 10.10.0.0 255.255.0.0"\nifconfig-push 10.8.0.50 255.255.255.0\nEND\nclient-deny 0 0 "no"\nclient-pending-auth 1 0 "WEB_AUTH::x" 30\nenv-filter 2\necho on\nshard-restart 1\n',
    ];
    for (const s of sessions) seed('management', `${sha(s)}.txt`, s);

    seed('pool-persist', 'ipp.txt', 'alice,10.8.0.2,\nbob,10.8.0.3,fd00:8::1001\n# comment\ncarol,10.8.0.6\n');

    const pki = makeTestPki();
    try {
      seed('crl', 'crl.pem', pki.crl);
      seed('crl', 'crl-empty.pem', pki.emptyCrl);
    } finally {
      pki.cleanup();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.stdout.write(`seed corpora written to ${CORPUS}\n`),
  (error: unknown) => {
    process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);

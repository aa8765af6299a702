// Interop with the real openvpn 2.6 binary over UDP on 127.0.0.1: our client against an
// openvpn server, and an openvpn client against our server (StatelessResponder + session).

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { StatelessResponder } from '../src/shared/session/stateless-responder';
import type { ControlSessionConfig } from '../src/shared/session/types';
import { buildPeerInfo } from '../src/shared/protocol/key-method2';
import { bindUdp, freePort, OpenvpnProcess, openvpnClientArgs, openvpnServerArgs, openvpnWrap } from '../lab/openvpn-peer';
import { makeTestPki } from '../lab/test-pki';
import { UdpSessionHost } from '../lab/udp-session';

const haveOpenvpn = spawnSync('openvpn', ['--version']).status !== null;
const pki = makeTestPki();
after(() => pki.cleanup());

const CLIENT_OPTIONS =
  'V4,dev-type tun,link-mtu 1559,tun-mtu 1500,proto UDPv4,cipher AES-256-GCM,auth [null-digest],keysize 256,key-method 2,tls-client';
const SERVER_OPTIONS =
  'V4,dev-type tun,link-mtu 1559,tun-mtu 1500,proto UDPv4,cipher AES-256-GCM,auth [null-digest],keysize 256,key-method 2,tls-server';

/** Our session's host, with a wait that shows its events and openvpn's log on timeout. */
class UdpHost extends UdpSessionHost {
  async waitFor(pred: () => boolean, ms: number, what: string, ovpn: OpenvpnProcess): Promise<void> {
    const end = Date.now() + ms;
    while (!pred()) {
      if (Date.now() > end) {
        const ev = this.events.filter((e) => e.type !== 'drop').map((e) => JSON.stringify(e).slice(0, 200));
        throw new Error(
          `no ${what} within ${ms} ms; events ${ev.join(' | ')}; drops ${this.events.filter((e) => e.type === 'drop').length}; openvpn log:\n${ovpn.log.slice(-3000)}`,
        );
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

const canTun = process.getuid?.() === 0 && existsSync('/dev/net/tun');

for (const mode of ['tls-crypt', 'tls-auth', 'tls-crypt-v2'] as const) {
  test(
    `our client against an openvpn 2.6 server (--mode server), ${mode}`,
    { skip: !haveOpenvpn || !canTun, timeout: 20_000 },
    async () => {
      const port = await freePort();
      const w = openvpnWrap(pki, mode, 'client');
      // p2mp mode needs a tun device; a uniquely named one, never configured (--ifconfig-noexec).
      const dev = `svt${process.pid % 10000}${mode.length}`;
      const ovpn = new OpenvpnProcess(
        openvpnServerArgs(pki, port, dev, [...(mode === 'tls-crypt' ? ['--reneg-sec', '2'] : []), ...w.args]),
      );
      const host = new UdpHost(await bindUdp());
      try {
        await ovpn.waitFor(/Initialization Sequence Completed/, 8000);
        host.remote = { address: '127.0.0.1', port };
        host.sock.on('message', (m) => {
          host.session?.receivePacket(m);
          host.schedule();
        });
        host.onEvent = (e, s) => {
          if (e.type === 'key-method-2') s.sendControlMessage('PUSH_REQUEST');
          if (e.type === 'control-message' && e.text.startsWith('PUSH_REPLY')) {
            s.setKeyDerivation(/(key-derivation|protocol-flags[^,]*) tls-ekm/.test(e.text) ? 'tls-ekm' : 'prf');
          }
        };
        const s = host.attach({
          role: 'client',
          tls: { ca: pki.caCert, cert: pki.clientCert, key: pki.clientKey },
          wrap: w.ours,
          remoteCertTls: 'server',
          keyMethod2: {
            options: CLIENT_OPTIONS,
            // DATA_V2 | TLS_KEY_EXPORT: the server answers with key-derivation tls-ekm.
            peerInfo: buildPeerInfo({ version: '2.6.14', platform: 'linux', ncp: 2, ciphers: ['AES-256-GCM', 'AES-128-GCM'], proto: 0x0a }),
          },
        });
        s.start();
        host.schedule();
        await host.waitFor(() => host.events.some((e) => e.type === 'keys'), 10_000, 'keys', ovpn);
        const km = host.events.find((e) => e.type === 'key-method-2');
        assert.ok(km?.type === 'key-method-2');
        assert.match(km.options, /^V4,.*tls-server/);
        const reply = host.events.find((e) => e.type === 'control-message' && e.text.startsWith('PUSH_REPLY'));
        assert.ok(reply?.type === 'control-message');
        assert.match(reply.text, /ifconfig 10\.8\.0\.\d+ 255\.255\.255\.0/);
        assert.match(reply.text, /key-derivation tls-ekm/);
        const k = host.events.find((e) => e.type === 'keys');
        assert.ok(k?.type === 'keys' && k.method === 'tls-ekm' && k.keyBlock.length === 256);
        await ovpn.waitFor(/SENT CONTROL \[client\]: 'PUSH_REPLY/, 3000);
        assert.ok(!host.events.some((e) => e.type === 'error'));
        if (mode === 'tls-crypt') {
          // The server renegotiates after reneg-sec 2 (1.8..2 s with its jitter): soft reset to key_id 1.
          await host.waitFor(() => host.events.some((e) => e.type === 'keys' && e.keyId === 1), 8000, 'keys for key_id 1', ovpn);
          const r = host.events.find((e) => e.type === 'renegotiating');
          assert.ok(r?.type === 'renegotiating' && r.initiatedBy === 'peer' && r.keyId === 1);
          assert.equal(s.activeKeyId, 1);
        }
        if (process.env.SESSION_TEST_LOG !== undefined) console.log(ovpn.log);
      } finally {
        await ovpn.kill();
        host.close();
      }
    },
  );
}

for (const mode of ['none', 'tls-auth', 'tls-crypt', 'tls-crypt-v2'] as const) {
  test(
    `openvpn 2.6 --client against our server session (stateless responder), ${mode}`,
    { skip: !haveOpenvpn, timeout: 20_000 },
    async () => {
      const w = openvpnWrap(pki, mode, 'server');
      const sock = await bindUdp();
      const port = sock.address().port;
      const host = new UdpHost(sock);
      const responder = new StatelessResponder({ wrap: w.ours });
      const push = 'PUSH_REPLY,ifconfig 10.8.0.2 255.255.255.0,peer-id 0,cipher AES-256-GCM,key-derivation tls-ekm';
      host.onEvent = (e, s) => {
        if (e.type === 'control-message' && e.text === 'PUSH_REQUEST') s.sendControlMessage(push);
      };
      const serverCfg: ControlSessionConfig = {
        role: 'server',
        tls: { ca: pki.caCert, cert: pki.serverCert, key: pki.serverKey },
        wrap: w.ours,
        remoteCertTls: 'client',
        keyMethod2: { options: SERVER_OPTIONS, peerInfo: null },
      };
      let created = 0;
      sock.on('message', (m, rinfo) => {
        if (host.session === null) {
          const r = responder.handle(m, rinfo.address, rinfo.port, performance.now());
          if (r.action === 'reply') sock.send(r.wire, rinfo.port, rinfo.address);
          else if (r.action === 'create') {
            created++;
            host.remote = { address: rinfo.address, port: rinfo.port };
            const s = host.attach(r.stateless === null ? serverCfg : { ...serverCfg, stateless: r.stateless });
            s.start();
            s.receivePacket(m);
          }
        } else {
          host.session.receivePacket(m);
        }
        host.schedule();
      });
      const ovpn = new OpenvpnProcess(openvpnClientArgs(pki, port, ['--connect-retry', '1', ...w.args]));
      try {
        await ovpn.waitFor(/Control Channel: TLSv1\.[23]/, 10_000);
        await ovpn.waitFor(/PUSH: Received control message: 'PUSH_REPLY,ifconfig 10\.8\.0\.2/, 8000);
        assert.equal(created, 1);
        // We start a soft reset; openvpn runs a second TLS handshake under key_id 1.
        await host.waitFor(() => host.session?.activeKeyId === 0, 3000, 'key_id 0 keys', ovpn);
        assert.equal(host.session!.renegotiate(), true);
        await host.waitFor(() => host.events.some((e) => e.type === 'keys' && e.keyId === 1), 8000, 'keys for key_id 1', ovpn);
        await ovpn.waitFor(/Control Channel: TLSv1\.3[\s\S]*Control Channel: TLSv1\.3/, 5000);
        const km = host.events.find((e) => e.type === 'key-method-2');
        assert.ok(km?.type === 'key-method-2');
        assert.match(km.options, /tls-client/);
        assert.match(km.peerInfo ?? '', /IV_PROTO=\d+/);
        const v = host.events.find((e) => e.type === 'tls-verified');
        assert.ok(v?.type === 'tls-verified' && v.commonName === 'client');
        const k = host.events.find((e) => e.type === 'keys');
        assert.ok(k?.type === 'keys' && k.method === 'tls-ekm');
        assert.ok(!host.events.some((e) => e.type === 'error'));
        if (process.env.SESSION_TEST_LOG !== undefined) console.log(ovpn.log);
      } finally {
        await ovpn.kill();
        host.close();
      }
    },
  );
}

test('openvpn client with a certificate from another CA is refused by our server', { skip: !haveOpenvpn, timeout: 20_000 }, async () => {
  const sock = await bindUdp();
  const port = sock.address().port;
  const host = new UdpHost(sock);
  const responder = new StatelessResponder({ wrap: { mode: 'none' } });
  const cfg: ControlSessionConfig = {
    role: 'server',
    tls: { ca: pki.caCert, cert: pki.serverCert, key: pki.serverKey },
    wrap: { mode: 'none' },
    keyMethod2: { options: SERVER_OPTIONS, peerInfo: null },
  };
  sock.on('message', (m, rinfo) => {
    if (host.session === null) {
      const r = responder.handle(m, rinfo.address, rinfo.port, performance.now());
      if (r.action === 'reply') sock.send(r.wire, rinfo.port, rinfo.address);
      else if (r.action === 'create') {
        host.remote = { address: rinfo.address, port: rinfo.port };
        const s = host.attach(r.stateless === null ? cfg : { ...cfg, stateless: r.stateless });
        s.start();
        s.receivePacket(m);
      }
    } else if (!host.session.isClosed) host.session.receivePacket(m);
    host.schedule();
  });
  const dir = pki.dir;
  writeFileSync(join(dir, 'intruder-only.crt'), pki.otherClientCert);
  writeFileSync(join(dir, 'intruder-only.key'), pki.otherClientKey);
  const ovpn = new OpenvpnProcess(
    openvpnClientArgs(pki, port, [], { cert: join(dir, 'intruder-only.crt'), key: join(dir, 'intruder-only.key') }),
  );
  try {
    await host.waitFor(() => host.events.some((e) => e.type === 'error'), 10_000, 'error', ovpn);
    const e = host.events.find((x) => x.type === 'error');
    assert.ok(e?.type === 'error' && e.reason === 'cert-rejected');
    assert.ok(!host.events.some((x) => x.type === 'key-method-2' || x.type === 'keys'));
  } finally {
    await ovpn.kill();
    host.close();
  }
});

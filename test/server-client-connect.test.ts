// client-connect / client-disconnect on a live shardvpn server with stock openvpn 2.6 clients:
// the connect script sees OpenVPN's variables (the pool address already chosen), what it writes
// to its $1 is applied like a client-config-dir file (here a fixed address and a pushed route),
// a non-zero exit refuses the client, the disconnect script gets the session's totals, and
// learn-address hears the client's address come and go.
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { after, before, test } from 'node:test';

import { parseEnv } from './helpers/client-lab';
import { SERVER_UNDERLAY, VpnLab } from '../lab/vpn-lab';

let lab: VpnLab;
before(() => {
  lab = VpnLab.create(1);
});
after(async () => {
  await lab.cleanup();
});

async function waitForFile(file: string, timeoutMs: number): Promise<string> {
  const end = Date.now() + timeoutMs;
  while (!existsSync(file)) {
    if (Date.now() > end) throw new Error(`${file} never appeared`);
    await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, 200));
  return readFileSync(file, 'utf8');
}

test('client-connect sets a fixed address and a route for one client and refuses another; client-disconnect gets the totals', async () => {
  const out = `${lab.dir}/cc`;
  const connect = lab.file(
    'connect.sh',
    `#!/bin/sh\nenv > "${out}.connect.$common_name"\n[ "$common_name" = client ] || exit 1\n` +
      `printf 'ifconfig-push 10.160.0.77 255.255.255.0\\npush "route 10.161.0.0 255.255.255.0"\\n' > "$1"\n`,
  );
  const disconnect = lab.file('disconnect.sh', `#!/bin/sh\nenv > "${out}.disconnect.$common_name"\n`);
  const learn = lab.file('learn.sh', `#!/bin/sh\necho "$*" >> "${out}.learn"\n`);
  for (const script of [connect, disconnect, learn]) chmodSync(script, 0o755);
  const server = await lab.startShardvpn(
    `port 1194\nproto udp\ndev tun\ntopology subnet\nserver 10.160.0.0 255.255.255.0\nkeepalive 10 60\nworkers 2\n${lab.serverTlsLines()}tls-crypt ${lab.keys.tlsCrypt}\n` +
      `script-security 2\nclient-connect ${connect}\nclient-disconnect ${disconnect}\nlearn-address ${learn}\nverb 3\n`,
  );
  const base = `client\ndev tun\nproto udp\nremote ${SERVER_UNDERLAY} 1194\nnobind\nca ${lab.pki.files.ca}\ntls-crypt ${lab.keys.tlsCrypt}\nremote-cert-tls server\nexplicit-exit-notify 1\nverb 3\n`;
  try {
    const client = await lab.startOpenvpnClient(0, `${base}cert ${lab.pki.files.clientCert}\nkey ${lab.pki.files.clientKey}\n`);
    try {
      const connectEnv = parseEnv(readFileSync(`${out}.connect.client`, 'utf8'));
      assert.equal(connectEnv.get('script_type'), 'client-connect');
      assert.equal(connectEnv.get('trusted_ip'), '10.150.0.10');
      assert.match(connectEnv.get('ifconfig_pool_remote_ip') ?? '', /^10\.160\.0\.\d+$/);
      assert.match(connectEnv.get('IV_VER') ?? '', /^2\.6\./);
      assert.match(lab.clients[0]!.exec('ip', ['-4', 'addr', 'show']), /inet 10\.160\.0\.77\/24/);
      assert.match(lab.clients[0]!.exec('ip', ['route']), /10\.161\.0\.0\/24 via 10\.160\.0\.1/);
      assert.equal(lab.ping(lab.clients[0]!, '10.160.0.1'), 3);
      assert.equal(lab.ping(lab.server, '10.160.0.77'), 3, 'the server routes the pushed address to the client');
    } finally {
      await client.stop();
    }
    const disconnectEnv = parseEnv(await waitForFile(`${out}.disconnect.client`, 5000));
    assert.equal(disconnectEnv.get('script_type'), 'client-disconnect');
    assert.ok(Number(disconnectEnv.get('bytes_received')) > 0, JSON.stringify([...disconnectEnv]));
    assert.ok(Number(disconnectEnv.get('bytes_sent')) > 0);
    assert.match(disconnectEnv.get('time_duration') ?? '', /^\d+$/);
    // learn-address heard the address client-connect gave, then its removal.
    const learned = (await waitForFile(`${out}.learn`, 5000)).trim().split('\n');
    for (let i = 0; i < 30 && learned.length < 2; i++) {
      await new Promise((r) => setTimeout(r, 100));
      learned.splice(0, learned.length, ...readFileSync(`${out}.learn`, 'utf8').trim().split('\n'));
    }
    assert.deepEqual(learned, ['add 10.160.0.77 client', 'delete 10.160.0.77']);

    const refused = await lab.startOpenvpnClient(
      0,
      `${base}cert ${lab.file('revoked.crt', lab.pki.revokedClientCert)}\nkey ${lab.file('revoked.key', lab.pki.revokedClientKey)}\n`,
      null,
    );
    try {
      await refused.waitFor(/AUTH_FAILED/, 15_000);
      assert.ok(existsSync(`${out}.connect.revoked`));
      await server.waitFor(/client 'revoked': client-connect command failed/, 5000);
    } finally {
      await refused.stop();
    }
    assert.equal(existsSync(`${out}.disconnect.revoked`), false, 'no disconnect script for a client never admitted');
  } finally {
    assert.equal(await server.stop(), 0, server.log().slice(-2000));
  }
});

/**
 * push-remove in a client-config-dir file, under the stock server and under shardvpn with the same
 * server.conf and ccd directory: `push-remove "route 10.16"` drops the global route 10.162 and the
 * file's own route 10.164 pushed before it, keeps route 10.163 pushed after it, and leaves
 * route-gateway (which a bare `route` prefix would drop too, as OpenVPN's prefix match does).
 */
test('push-remove in a client-config-dir file: the stock server and shardvpn drop the same pushes', { timeout: 60_000 }, async () => {
  const ccd = `${lab.dir}/ccd-push-remove`;
  mkdirSync(ccd, { recursive: true });
  writeFileSync(
    `${ccd}/client`,
    'push "route 10.164.0.0 255.255.255.0"\npush-remove "route 10.16"\npush "route 10.163.0.0 255.255.255.0"\n',
  );
  const config =
    `port 1194\nproto udp\ndev tun\ntopology subnet\nserver 10.160.0.0 255.255.255.0\nkeepalive 10 60\n${lab.serverTlsLines()}tls-crypt ${lab.keys.tlsCrypt}\n` +
    `push "route 10.162.0.0 255.255.255.0"\ndh none\nclient-config-dir ${ccd}\nverb 3\n`;
  const client = `client\ndev tun\nproto udp\nremote ${SERVER_UNDERLAY} 1194\nnobind\n${lab.clientTlsLines()}tls-crypt ${lab.keys.tlsCrypt}\nverb 3\n`;
  const seen: { routes: string[]; table: string }[] = [];
  for (const ours of [false, true]) {
    const server = ours
      ? await lab.startShardvpn(config, 'push-remove.conf')
      : lab.spawn(lab.server, 'openvpn', ['--config', lab.file('push-remove-stock.conf', config)], 'openvpn server');
    try {
      if (!ours) await server.waitFor(/Initialization Sequence Completed/, 15_000);
      const peer = await lab.startOpenvpnClient(0, client);
      try {
        const reply = /PUSH_REPLY,([^'\n]*)/.exec(peer.log())?.[1] ?? '';
        seen.push({
          routes: reply.split(',').filter((o) => o.startsWith('route')),
          table: lab.clients[0]!.exec('ip', ['-4', 'route', 'show', 'dev', 'tun0']).replace(
            / proto \S+| scope \S+| src \S+| metric \d+/g,
            '',
          ),
        });
        assert.equal(lab.ping(lab.clients[0]!, '10.160.0.1'), 3);
      } finally {
        await peer.stop();
      }
    } finally {
      await server.stop('SIGTERM', 5000);
    }
  }
  const [stock, shard] = seen as [(typeof seen)[0], (typeof seen)[0]];
  assert.deepEqual(stock.routes, ['route-gateway 10.160.0.1', 'route 10.163.0.0 255.255.255.0'], JSON.stringify(stock));
  assert.match(stock.table, /10\.163\.0\.0\/24 via 10\.160\.0\.1/);
  assert.deepEqual(shard, stock);
});

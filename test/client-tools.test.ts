// The key tools and self-tests: `shardvpn --genkey` files work in stock openvpn 2.6 on both ends
// of a tunnel, `openvpn --genkey` files work in shardvpn, and --test-crypto, --show-ciphers,
// --version and --help answer.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';

import { parseStaticKey, parseTlsCryptV2ClientKey, parseTlsCryptV2ServerKey } from '../src/shared/protocol/static-key';
import { BIN, clientConfig, serverConfig, startOurClient, startStockServer } from './helpers/client-lab';
import { SERVER_UNDERLAY, VpnLab, type LabProcess } from '../lab/vpn-lab';

let lab: VpnLab;
before(() => {
  lab = VpnLab.create(1);
});
after(async () => {
  await lab.cleanup();
});

function shardvpn(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function ourKey(name: string, args: string[]): string {
  const file = `${lab.dir}/${name}`;
  const r = shardvpn(['--genkey', args[0]!, file, ...args.slice(1)]);
  assert.equal(r.status, 0, r.stderr);
  return file;
}

test('shardvpn --genkey files parse and are written like openvpn writes them', () => {
  const tc = ourKey('our-tc.key', ['tls-crypt']);
  assert.equal(parseStaticKey(readFileSync(tc, 'utf8')).length, 256);
  assert.match(
    readFileSync(tc, 'utf8'),
    /^#\n# 2048 bit OpenVPN static key\n#\n-----BEGIN OpenVPN Static key V1-----\n([0-9a-f]{32}\n){16}-----END OpenVPN Static key V1-----\n$/,
  );
  const server = ourKey('our-tc2-server.key', ['tls-crypt-v2-server']);
  assert.equal(parseTlsCryptV2ServerKey(readFileSync(server, 'utf8')).length, 128);
  const client = ourKey('our-tc2-client.key', ['tls-crypt-v2-client', '--tls-crypt-v2', server]);
  assert.equal(parseTlsCryptV2ClientKey(readFileSync(client, 'utf8')).key2.length, 256);
  const stdout = shardvpn(['--genkey', 'secret']);
  assert.equal(stdout.status, 0);
  assert.equal(parseStaticKey(stdout.stdout).length, 256);
  const noServer = shardvpn(['--genkey', 'tls-crypt-v2-client', `${lab.dir}/x.key`]);
  assert.equal(noServer.status, 1);
  assert.match(noServer.stderr, /needs --tls-crypt-v2 SERVERKEY/);
  // openvpn wraps a client key with our server key, and we wrap one with openvpn's.
  const theirs = `${lab.dir}/their-client-of-our-server.key`;
  execFileSync('openvpn', ['--genkey', 'tls-crypt-v2-client', theirs, '--tls-crypt-v2', server], { stdio: 'ignore' });
  assert.equal(parseTlsCryptV2ClientKey(readFileSync(theirs, 'utf8')).wkc.length > 0, true);
});

const STOCK_CASES = [
  {
    name: 'tls-crypt',
    server: (k: Record<string, string>) => `tls-crypt ${k.tc}\n`,
    client: (k: Record<string, string>) => `tls-crypt ${k.tc}\n`,
  },
  {
    name: 'tls-auth',
    server: (k: Record<string, string>) => `tls-auth ${k.ta} 0\n`,
    client: (k: Record<string, string>) => `tls-auth ${k.ta} 1\n`,
  },
  {
    name: 'tls-crypt-v2',
    server: (k: Record<string, string>) => `tls-crypt-v2 ${k.v2s}\n`,
    client: (k: Record<string, string>) => `tls-crypt-v2 ${k.v2c}\n`,
  },
];

for (const c of STOCK_CASES) {
  test(`keys from shardvpn --genkey: stock openvpn server and client connect with ${c.name}`, { timeout: 40_000 }, async () => {
    const v2s = ourKey(`stock-${c.name}-v2s.key`, ['tls-crypt-v2-server']);
    const keys = {
      tc: ourKey(`stock-${c.name}-tc.key`, ['tls-crypt']),
      ta: ourKey(`stock-${c.name}-ta.key`, ['tls-auth']),
      v2s,
      v2c: ourKey(`stock-${c.name}-v2c.key`, ['tls-crypt-v2-client', '--tls-crypt-v2', v2s]),
    };
    const server = await startStockServer(lab, serverConfig(lab, { wrap: 'none', extra: c.server(keys) }));
    let client: LabProcess | null = null;
    try {
      client = await lab.startOpenvpnClient(
        0,
        `client\ndev tun\nproto udp\nremote ${SERVER_UNDERLAY} 1194\nnobind\n${lab.clientTlsLines()}${c.client(keys)}verb 3\n`,
        null,
      );
      await client.waitFor(/Initialization Sequence Completed/);
      assert.equal(lab.ping(lab.clients[0]!, '10.152.0.1', 2), 2);
    } finally {
      // Stopped on failure too (also when it never connects), so it does not linger into the next case.
      await client?.stop();
      await server.stop();
    }
  });
}

test('keys from openvpn --genkey in shardvpn, and a shardvpn client key of an openvpn server key', { timeout: 40_000 }, async () => {
  // lab.keys were written by openvpn --genkey; our client wraps with our own client key of their server key.
  const ours = ourKey('ours-of-their-server.key', ['tls-crypt-v2-client', '--tls-crypt-v2', lab.keys.tlsCryptV2Server]);
  const server = await startStockServer(lab, serverConfig(lab, { wrap: 'tls-crypt-v2' }));
  const client = startOurClient(lab, 0, clientConfig(lab, { wrap: 'none', extra: `tls-crypt-v2 ${ours}\n` }));
  let clientCode: number | null;
  try {
    await client.waitFor(/Initialization Sequence Completed/, 15_000);
    assert.equal(lab.ping(lab.clients[0]!, '10.152.0.1', 2), 2);
  } finally {
    // Both always stopped, the client's code checked after: a throw here would leave the server on its port.
    clientCode = await client.stop();
    await server.stop();
  }
  assert.equal(clientCode, 0, client.log().slice(-3000));
});

test('--test-crypto checks every cipher; --show-ciphers, --version and --help answer', () => {
  const crypto = shardvpn(['--test-crypto']);
  assert.equal(crypto.status, 0, crypto.stdout + crypto.stderr);
  for (const cipher of ['AES-128-GCM', 'AES-256-GCM', 'CHACHA20-POLY1305', 'AES-128-CBC', 'AES-192-CBC', 'AES-256-CBC']) {
    assert.match(crypto.stdout, new RegExp(`Data channel cipher ${cipher}: .*replay checks OK`));
  }
  assert.match(crypto.stdout, /Crypto self-test OK/);
  const ciphers = shardvpn(['--show-ciphers']);
  assert.equal(ciphers.status, 0);
  assert.match(ciphers.stdout, /^AES-256-GCM {2}\(256 bit key, 128 bit block, TLS client\/server mode only\)$/m);
  assert.match(ciphers.stdout, /^CHACHA20-POLY1305 /m);
  assert.match(ciphers.stdout, /^AES-256-CBC {2}\(256 bit key, 128 bit block\)$/m);
  const version = shardvpn(['--version']);
  assert.equal(version.status, 0);
  assert.match(version.stdout, /^shardvpn \d+\.\d+\.\d+ /);
  const help = shardvpn(['--help']);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /--genkey TYPE FILE/);
  assert.match(help.stdout, /client\.ovpn/);
});

// auth-user-pass-verify on a live shardvpn server with stock openvpn 2.6 clients: the script
// sees the username and password (via-file: a temp file it is given, gone afterwards; via-env:
// variables, the password only at script-security 3) and OpenVPN's variables; exit status 0
// admits the client, anything else answers AUTH_FAILED.
import assert from 'node:assert/strict';
import { chmodSync, existsSync, readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';

import { parseEnv, startOurClient } from './helpers/client-lab';
import { SERVER_UNDERLAY, VpnLab } from '../lab/vpn-lab';

let lab: VpnLab;
before(() => {
  lab = VpnLab.create(1);
});
after(async () => {
  await lab.cleanup();
});

/** A verify script that records what it got (FILE.<username>) and admits alice/secret only. */
function verifyScript(): { script: string; out: string } {
  const out = `${lab.dir}/verify`;
  const script = lab.file(
    'verify.sh',
    `#!/bin/sh\nif [ -n "$1" ]; then u=$(sed -n 1p "$1"); p=$(sed -n 2p "$1"); echo "FILE $1" > "${out}.$u"; else u="$username"; p="$password"; : > "${out}.$u"; fi\n` +
      `env >> "${out}.$u"\n[ "$u" = alice ] && [ "$p" = secret ]\n`,
  );
  chmodSync(script, 0o755);
  return { script, out };
}

const serverConf = (verify: string, extra: string): string =>
  `port 1194\nproto udp\ndev tun\ntopology subnet\nserver 10.159.0.0 255.255.255.0\nkeepalive 10 60\nworkers 2\n${lab.serverTlsLines()}tls-crypt ${lab.keys.tlsCrypt}\nauth-user-pass-verify ${verify}\n${extra}verb 3\n`;

function clientConf(user: string, password: string): string {
  const creds = lab.file(`creds-${user}-${password}`, `${user}\n${password}\n`);
  return `client\ndev tun\nproto udp\nremote ${SERVER_UNDERLAY} 1194\nnobind\n${lab.clientTlsLines()}tls-crypt ${lab.keys.tlsCrypt}\nauth-user-pass ${creds}\nverb 3\n`;
}

test('via-file: alice/secret gets in, a wrong password gets AUTH_FAILED; the file is gone afterwards', async () => {
  const { script, out } = verifyScript();
  const server = await lab.startShardvpn(serverConf(`${script} via-file`, 'script-security 2\n'));
  try {
    const good = await lab.startOpenvpnClient(0, clientConf('alice', 'secret'));
    try {
      assert.equal(lab.ping(lab.clients[0]!, '10.159.0.1'), 3);
    } finally {
      await good.stop();
    }
    const seen = readFileSync(`${out}.alice`, 'utf8');
    const file = /^FILE (.+)$/m.exec(seen)?.[1];
    assert.ok(file !== undefined && file.includes('openvpn_up_'), seen);
    assert.equal(existsSync(file), false, 'the username/password file is removed');
    const env = parseEnv(seen);
    assert.equal(env.get('script_type'), 'user-pass-verify');
    assert.equal(env.get('common_name'), 'client');
    assert.equal(env.get('username'), 'alice');
    assert.equal(env.get('untrusted_ip'), '10.150.0.10');
    assert.match(env.get('IV_VER') ?? '', /^2\.6\./);
    assert.equal(env.has('password'), false, 'via-file puts no password in the environment');

    const bad = await lab.startOpenvpnClient(0, clientConf('alice', 'wrong'), null);
    try {
      await bad.waitFor(/AUTH_FAILED/, 15_000);
      await server.waitFor(/client\/10\.150\.0\.10:\d+ TLS Auth Error: Auth Username\/Password verification failed for peer/, 5000);
    } finally {
      await bad.stop();
    }
  } finally {
    assert.equal(await server.stop(), 0, server.log().slice(-2000));
  }
});

// The stock client drops control characters from what it reads; shardvpn's client sends them as
// they are, as any client may.
test('control characters in a username reach the script, and the log, as underscores (string_mod_remap_name)', async () => {
  const { script, out } = verifyScript();
  const server = await lab.startShardvpn(serverConf(`${script} via-file`, 'script-security 2\n'));
  try {
    const creds = lab.file('creds-control', 'al\tice\u001b[2J\nsecret\n');
    const conf = clientConf('alice', 'secret').replace(/^auth-user-pass .*$/m, `auth-user-pass ${creds}`);
    const forged = startOurClient(lab, 0, conf);
    try {
      await forged.waitFor(/AUTH_FAILED/, 15_000);
      const seen = parseEnv(readFileSync(`${out}.al_ice_[2J`, 'utf8'));
      assert.equal(seen.get('username'), 'al_ice_[2J');
      assert.ok(!server.log().includes('\u001b'), 'no escape character in the log');
    } finally {
      await forged.stop();
    }
  } finally {
    assert.equal(await server.stop(), 0, server.log().slice(-2000));
  }
});

test('via-env: the password reaches the script at script-security 3 only', async () => {
  const { script, out } = verifyScript();
  let server = await lab.startShardvpn(serverConf(`${script} via-env`, 'script-security 3\n'));
  try {
    const good = await lab.startOpenvpnClient(0, clientConf('alice', 'secret'));
    try {
      assert.equal(lab.ping(lab.clients[0]!, '10.159.0.1'), 3);
      assert.equal(parseEnv(readFileSync(`${out}.alice`, 'utf8')).get('password'), 'secret');
    } finally {
      await good.stop();
    }
  } finally {
    assert.equal(await server.stop(), 0, server.log().slice(-2000));
  }
  server = await lab.startShardvpn(serverConf(`${script} via-env`, 'script-security 2\n'));
  try {
    const refused = await lab.startOpenvpnClient(0, clientConf('alice', 'secret'), null);
    try {
      await refused.waitFor(/AUTH_FAILED/, 15_000);
      assert.equal(parseEnv(readFileSync(`${out}.alice`, 'utf8')).has('password'), false);
    } finally {
      await refused.stop();
    }
  } finally {
    assert.equal(await server.stop(), 0, server.log().slice(-2000));
  }
});

test('username-as-common-name: the verified username names the client from then on', async () => {
  const { script } = verifyScript();
  const server = await lab.startShardvpn(serverConf(`${script} via-file`, 'script-security 2\nusername-as-common-name\n'));
  try {
    const client = await lab.startOpenvpnClient(0, clientConf('alice', 'secret'));
    try {
      await server.waitFor(/alice\/10\.150\.0\.10:\d+ MULTI: primary virtual IP/, 5000);
      assert.doesNotMatch(server.log(), /\bclient\/10\.150\.0\.10:\d+ MULTI: primary virtual IP/);
    } finally {
      await client.stop();
    }
  } finally {
    assert.equal(await server.stop(), 0, server.log().slice(-2000));
  }
});

test('auth-user-pass-optional: without it a client that sends no username is refused before the script; with it the script decides', async () => {
  const seen = `${lab.dir}/optional-seen`;
  const script = lab.file('optional.sh', `#!/bin/sh\necho "user=[$username] cn=[$common_name]" >> "${seen}"\nexit 0\n`);
  chmodSync(script, 0o755);
  const certOnly = `client\ndev tun\nproto udp\nremote ${SERVER_UNDERLAY} 1194\nnobind\n${lab.clientTlsLines()}tls-crypt ${lab.keys.tlsCrypt}\nverb 3\n`;
  let server = await lab.startShardvpn(serverConf(`${script} via-env`, 'script-security 2\n'));
  try {
    const refused = await lab.startOpenvpnClient(0, certOnly, null);
    try {
      await server.waitFor(/client\/10\.150\.0\.10:\d+ TLS Error: Auth Username\/Password was not provided by peer/, 15_000);
      await refused.waitFor(/AUTH_FAILED/, 10_000);
      assert.equal(existsSync(seen), false, 'the script is not run');
    } finally {
      await refused.stop();
    }
  } finally {
    assert.equal(await server.stop(), 0, server.log().slice(-2000));
  }
  server = await lab.startShardvpn(serverConf(`${script} via-env`, 'script-security 2\nauth-user-pass-optional\n'));
  try {
    const admitted = await lab.startOpenvpnClient(0, certOnly);
    try {
      assert.equal(lab.ping(lab.clients[0]!, '10.159.0.1'), 3);
    } finally {
      await admitted.stop();
    }
    assert.equal(readFileSync(seen, 'utf8'), 'user=[] cn=[client]\n');
  } finally {
    assert.equal(await server.stop(), 0, server.log().slice(-2000));
  }
});

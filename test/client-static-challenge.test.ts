// static-challenge (a second factor such as a TOTP code): the client asks "CHALLENGE: TEXT" on its
// terminal even though the password comes from the auth-user-pass file, and sends
// SCRV1:base64(password):base64(response) as the password. A stock 2.6 server's
// auth-user-pass-verify script checks exactly that string; the stock client and shardvpn's client,
// each run on a pseudo-terminal (util-linux `script`) that types the response, both get in.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync } from 'node:fs';
import { after, before, test } from 'node:test';

import { VpnLab } from '../lab/vpn-lab';
import { BIN, clientConfig, serverConfig, startStockServer } from './helpers/client-lab';

const haveScript = spawnSync('script', ['--version']).status === 0;

let lab: VpnLab;
before(() => {
  lab = VpnLab.create(1);
});
after(async () => {
  await lab.cleanup();
});

const EXPECTED = `SCRV1:${Buffer.from('secret').toString('base64')}:${Buffer.from('123456').toString('base64')}`;

test(
  'static-challenge: the response is asked on the terminal and sent as SCRV1, as the stock client does',
  { skip: !haveScript, timeout: 90_000 },
  async () => {
    const verify = lab.file('scrv1.sh', `#!/bin/sh\n[ "$(sed -n 1p "$1")" = alice ] && [ "$(sed -n 2p "$1")" = '${EXPECTED}' ]\n`);
    chmodSync(verify, 0o755);
    const server = await startStockServer(
      lab,
      serverConfig(lab, { extra: `script-security 2\nauth-user-pass-verify ${verify} via-file\n` }),
    );
    try {
      const creds = lab.file('alice.pass', 'alice\nsecret\n');
      const profile = lab.file(
        'challenge.ovpn',
        clientConfig(lab, { extra: `auth-user-pass ${creds}\nstatic-challenge "Enter your code" 1\nauth-retry none\n` }),
      );
      for (const command of [`openvpn --config ${profile}`, `${process.execPath} ${BIN} --config ${profile}`]) {
        // The pseudo-terminal gets the response; the client stays up until the init line, then it is stopped.
        const run = spawnSync(
          'ip',
          ['netns', 'exec', lab.clients[0]!.name, 'timeout', '-s', 'TERM', '6', 'script', '-qfec', command, '/dev/null'],
          { input: '123456\n', encoding: 'utf8', timeout: 30_000 },
        );
        const out = `${run.stdout}${run.stderr}`;
        assert.match(out, /CHALLENGE: Enter your code/, out.slice(-3000));
        assert.match(out, /Initialization Sequence Completed/, out.slice(-3000));
        assert.doesNotMatch(out, /AUTH_FAILED/);
      }
    } finally {
      await server.stop();
    }
  },
);

// --auth-gen-token against the stock openvpn 2.6 binary in both roles: a client whose login
// passed is pushed a session token and sends it instead of its password when it reconnects (and,
// to a stock server, at every renegotiation), so a one-time password is asked once; tokens are
// renewed, expire with their lifetime, go to the script with external-auth, and an openvpn server
// and shardvpn sharing auth-gen-token-secret take each other's tokens. The verify script plays a
// one-time password: it admits alice/secret once, then never again (unless told otherwise).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { BIN, type LabProcess, VpnLab } from '../lab/vpn-lab';
import { clientConfig, serverConfig, startOurClient, startStockServer, waitCount } from './helpers/client-lab';
import { ManagementClient, waitUntil } from './helpers/management-client';

const INIT = /Initialization Sequence Completed/;
const NET = '10.161.0';

let lab: VpnLab;
before(() => {
  lab = VpnLab.create(1);
});
after(async () => {
  await lab.cleanup();
});

interface Otp {
  script: string;
  /** One line per call: state=[session_state] id=[session_id] user=[username]. */
  calls(): string[];
  /** From now on the password is admitted every time. */
  always(): void;
  /** From now on a token the server found good (session_state Authenticated) is admitted. */
  external(): void;
}

let serial = 0;
function otpScript(): Otp {
  const base = `${lab.dir}/otp-${serial++}`;
  const script = lab.file(
    `otp-${serial}.sh`,
    `#!/bin/sh\nu=$(sed -n 1p "$1"); p=$(sed -n 2p "$1")\necho "state=[$session_state] id=[$session_id] user=[$u]" >> "${base}.calls"\n` +
      `if [ "$session_state" = Authenticated ] && [ -e "${base}.external" ]; then exit 0; fi\n` +
      `[ "$u" = alice ] && [ "$p" = secret ] || exit 1\n[ -e "${base}.always" ] && exit 0\n[ -e "${base}.used" ] && exit 1\n: > "${base}.used"\n`,
  );
  chmodSync(script, 0o755);
  writeFileSync(`${base}.calls`, '');
  return {
    script,
    calls: () =>
      readFileSync(`${base}.calls`, 'utf8')
        .split('\n')
        .filter((l) => l !== ''),
    always: () => writeFileSync(`${base}.always`, ''),
    external: () => writeFileSync(`${base}.external`, ''),
  };
}

const server = (otp: Otp, token: string): string =>
  serverConfig(lab, {
    net: NET,
    extra: `hand-window 3\nscript-security 2\nauth-user-pass-verify ${otp.script} via-file\nauth-gen-token ${token}\n`,
  });

function client(extra = ''): string {
  const creds = lab.file(`creds-${serial++}`, 'alice\nsecret\n');
  return clientConfig(lab, { extra: `auth-user-pass ${creds}\n${extra}` });
}

async function ourServer(config: string): Promise<LabProcess> {
  return lab.startShardvpn(config, `server-${serial++}.conf`);
}

async function reconnect(proc: LabProcess, times: number): Promise<void> {
  process.kill(proc.child.pid!, 'SIGUSR1');
  await waitCount(proc, INIT, times, 20_000);
}

/** Our server with `config`, a stock client with `client()`; both stopped afterwards, the server cleanly. */
async function servingStockClient(config: string, body: (ours: LabProcess, stock: LabProcess) => Promise<void>): Promise<void> {
  const ours = await ourServer(config);
  try {
    const stock = await lab.startOpenvpnClient(0, client());
    try {
      await body(ours, stock);
    } finally {
      await stock.stop();
    }
  } finally {
    assert.equal(await ours.stop(), 0, ours.log().slice(-2000));
  }
}

test('shardvpn server, stock client: the token is pushed and renewed, and a reconnect with it needs no password', async () => {
  const otp = otpScript();
  await servingStockClient(server(otp, '0 6'), async (ours, stock) => {
    assert.equal(otp.calls().length, 1);
    assert.match(otp.calls()[0]!, /^state=\[Initial\] id=\[[A-Za-z0-9+/]{16}\] user=\[alice\]$/);
    assert.match(stock.log(), /PUSH: Received control message: 'PUSH_REPLY,.*auth-tokenSESS_ID,/);
    // The renewals: a PUSH_REPLY of their own with the new token, every renewal period. The
    // reconnect waits past the first token's window (2 x 6 s): only a renewed token gets in.
    const connected = Date.now();
    await waitCount(stock, /PUSH: Received control message: 'PUSH_REPLY,auth-tokenSESS_ID'/, 2, 16_000);
    await sleep(Math.max(0, connected + 13_000 - Date.now()));
    await reconnect(stock, 2);
    assert.equal(otp.calls().length, 1, 'the one-time password was not asked again');
    await ours.waitFor(/TLS: Username\/auth-token authentication succeeded for username 'alice'/, 5000);
    assert.equal(lab.ping(lab.clients[0]!, `${NET}.1`), 3);
  });
});

test('shardvpn server: past the lifetime a token answers AUTH_FAILED,SESSION at a reconnect, and a connected session is ended', async () => {
  const otp = otpScript();
  otp.always();
  await servingStockClient(server(otp, '2 6'), async (ours, stock) => {
    await sleep(3000);
    await reconnect(stock, 2);
    assert.match(stock.log(), /AUTH_FAILED,SESSION: token expired/);
    assert.match(ours.log(), /TLS: Username\/auth-token authentication failed for username 'alice'/);
    const calls = otp.calls();
    assert.equal(calls.length, 2, calls.join('\n'));
    assert.match(calls[1]!, /^state=\[Initial\] /, 'a new session: the password, not the token');
    // The new session's lifetime is over at its first renewal: the server says so and ends it,
    // the stock client drops its token and logs in with the password again.
    await waitCount(stock, /AUTH_FAILED,SESSION: token expired/, 2, 15_000);
    await ours.waitFor(/--auth-gen-token: auth-token lifetime is over/, 5000);
    await waitCount(stock, INIT, 3, 20_000);
    assert.equal(otp.calls().length, 3);
  });
});

test('shardvpn server with external-auth: the script decides on the token, seeing session_state and the same session_id', async () => {
  const otp = otpScript();
  otp.external();
  await servingStockClient(server(otp, '0 6 external-auth'), async (_ours, stock) => {
    await reconnect(stock, 2);
    const calls = otp.calls();
    assert.equal(calls.length, 2, calls.join('\n'));
    const first = /id=\[(\S+)\]/.exec(calls[0]!)?.[1];
    assert.match(calls[0]!, /^state=\[Initial\] /);
    assert.equal(calls[1], `state=[Authenticated] id=[${first}] user=[alice]`);
  });
});

test('auth-gen-token-secret: a stock server takes the token shardvpn issued, and shardvpn the one the stock server issued', async () => {
  const otp = otpScript();
  const secret = `${lab.dir}/token-${serial++}.key`;
  execFileSync(process.execPath, [BIN, '--genkey', 'auth-token', secret]);
  assert.ok(existsSync(secret));
  const config = `${server(otp, '0 6')}auth-gen-token-secret ${secret}\n`;
  let ours = await ourServer(config);
  const stock = await lab.startOpenvpnClient(0, client());
  try {
    assert.equal(otp.calls().length, 1);
    assert.equal(await ours.stop(), 0, ours.log().slice(-2000));
    const theirs = await startStockServer(lab, config);
    try {
      await reconnect(stock, 2);
      await theirs.waitFor(/TLS: Username\/auth-token authentication succeeded for username 'alice'/, 5000);
      assert.equal(otp.calls().length, 1, 'openvpn took the token shardvpn made');
    } finally {
      await theirs.stop();
    }
    ours = await ourServer(config);
    await reconnect(stock, 3);
    await ours.waitFor(/TLS: Username\/auth-token authentication succeeded for username 'alice'/, 5000);
    assert.equal(otp.calls().length, 1, 'shardvpn took the token openvpn made');
    assert.equal(lab.ping(lab.clients[0]!, `${NET}.1`), 3);
  } finally {
    await stock.stop();
    assert.equal(await ours.stop(), 0, ours.log().slice(-2000));
  }
});

test('shardvpn client, stock server: the pushed token goes with renegotiations and reconnects; a refused one is dropped for the password', async () => {
  const otp = otpScript();
  const config = `${server(otp, '0 6')}reneg-sec 8\n`;
  let stock = await startStockServer(lab, config);
  const ours = startOurClient(lab, 0, client());
  try {
    await ours.waitFor(INIT, 20_000);
    const connected = Date.now();
    assert.equal(otp.calls().length, 1);
    assert.doesNotMatch(ours.log(), /SESS_ID_AT_[A-Za-z0-9+/]/, 'the token stays out of the log');
    // The stock server checks the login again at its renegotiation: the token, not the password.
    await stock.waitFor(/TLS: Username\/auth-token authentication succeeded for username 'alice'/, 15_000);
    assert.equal(otp.calls().length, 1);
    assert.equal(lab.ping(lab.clients[0]!, `${NET}.1`), 3);
    // Past the first token's window (2 x 6 s): only a renewal the client took gets it back in.
    await sleep(Math.max(0, connected + 13_000 - Date.now()));
    await reconnect(ours, 2);
    assert.equal(otp.calls().length, 1, 'the reconnect went with the token');
    // A new stock server has a new key: the token fails, the client drops it and logs in again.
    await stock.stop();
    otp.always();
    stock = await startStockServer(lab, config);
    await reconnect(ours, 3);
    assert.match(ours.log(), /AUTH: Received control message: AUTH_FAILED/);
    assert.match(ours.log(), /SIGUSR1\[soft,auth-failure \(auth-token\)\] received, process restarting/);
    assert.equal(otp.calls().length, 2);
    assert.equal(lab.ping(lab.clients[0]!, `${NET}.1`), 3);
  } finally {
    await ours.stop();
    await stock.stop();
  }
});

test('shardvpn server with management-client-auth: the first login is asked of the management client, a reconnect with the token is not', async () => {
  const socketPath = `${lab.dir}/token-management-${serial++}.sock`;
  const ours = await ourServer(
    serverConfig(lab, {
      net: NET,
      extra: `hand-window 3\nmanagement ${socketPath} unix\nmanagement-client-auth\nauth-gen-token 0 6\n`,
    }),
  );
  const operator = new ManagementClient(socketPath);
  try {
    await operator.waitLine(/^>INFO:OpenVPN Management Interface Version 5/);
    const stock = await lab.startOpenvpnClient(0, client(), null);
    try {
      const at = await operator.waitLine(/^>CLIENT:CONNECT,\d+,\d+$/, 0, 15_000);
      const [, cid, kid] = operator.lines[at]!.split(',');
      await operator.waitLine(/^>CLIENT:ENV,session_state=Initial$/, at, 5000);
      operator.write(`client-auth-nt ${cid} ${kid}\n`);
      await stock.waitFor(INIT, 15_000);
      await reconnect(stock, 2);
      const established = (): number => operator.lines.filter((l) => l.startsWith('>CLIENT:ESTABLISHED,')).length;
      await waitUntil(
        'a second >CLIENT:ESTABLISHED',
        () => established() >= 2,
        10_000,
        () => operator.lines.join('\n'),
      );
      assert.equal(operator.lines.filter((l) => l.startsWith('>CLIENT:CONNECT,')).length, 1, 'no second verdict was asked');
      assert.equal(lab.ping(lab.clients[0]!, `${NET}.1`), 3);
    } finally {
      await stock.stop();
    }
  } finally {
    operator.close();
    assert.equal(await ours.stop(), 0, ours.log().slice(-2000));
  }
});

// The management interface: greeting, password, each command's reply, client notifications,
// robustness with several management clients at once, and parity with a real OpenVPN 2.6 server.
process.env.TZ = 'UTC';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ManagementServer,
  managementListenFromOptions,
  readManagementPassword,
  type ManagementServerOptions,
} from '../src/main/ops/management';
import { FakeServerView, TITLE, client } from './helpers/fake-server-view';
import { startRealServers } from './helpers/real-openvpn-server';

const GREETING = ">INFO:OpenVPN Management Interface Version 5 -- type 'help' for more info";
const NOW_MS = 1_700_000_200_000;

/** A management client reading \r\n-terminated lines (and a trailing partial line, for prompts). */
class Client {
  private buffer = '';
  private waiters: (() => void)[] = [];
  closed = false;

  private constructor(readonly socket: Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      this.buffer += d;
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  static open(target: { port: number } | { path: string }): Promise<Client> {
    return new Promise((resolve, reject) => {
      const s = 'port' in target ? connect(target.port, '127.0.0.1') : connect(target.path);
      s.once('connect', () => resolve(new Client(s)));
      s.once('error', reject);
    });
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Waits until the received text satisfies `done` (or the peer closes / 3 s pass). */
  async waitFor(done: (text: string) => boolean, ms = 3000): Promise<string> {
    const deadline = Date.now() + ms;
    while (!done(this.buffer) && !this.closed && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 50);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.buffer;
  }

  /** Takes and returns what arrived so far. */
  take(): string {
    const out = this.buffer;
    this.buffer = '';
    return out;
  }

  /** Sends a command and returns its reply lines (up to and including `END` when multiline). */
  async cmd(line: string, multiline = false): Promise<string[]> {
    this.take();
    this.socket.write(`${line}\n`);
    const text = await this.waitFor((t) => (multiline ? /(^|\r\n)END\r\n$/.test(t) : t.endsWith('\r\n')));
    this.take();
    assert.ok(text.endsWith('\r\n'), `reply to ${line}: ${JSON.stringify(text)}`);
    return text.slice(0, -2).split('\r\n');
  }

  async greeting(): Promise<string> {
    return (await this.waitFor((t) => t.endsWith('\r\n'))) && this.take();
  }

  end(): void {
    this.socket.destroy();
  }
}

async function startTcp(
  view: FakeServerView,
  extra: Partial<ManagementServerOptions> = {},
): Promise<{ server: ManagementServer; port: number }> {
  const server = new ManagementServer({ listen: { kind: 'tcp', host: '127.0.0.1', port: 0 }, view, clock: () => NOW_MS, ...extra });
  await server.start();
  return { server, port: (server.address() as AddressInfo).port };
}

function twoClientView(): FakeServerView {
  const view = new FakeServerView([
    client({ cid: 0, commonName: 'alice', bytesReceived: 11, bytesSent: 22 }),
    client({
      cid: 5,
      peerId: 1,
      commonName: 'bob',
      realAddress: { family: 4, address: '192.0.2.9', port: 40000 },
      virtualAddress: '10.8.0.3',
      bytesReceived: 33,
      bytesSent: 44,
    }),
  ]);
  view.statusVersion = 2;
  view.stats = { nclients: 2, bytesIn: 1000, bytesOut: 2000 };
  return view;
}

test('greeting and each command reply, worded as OpenVPN', async () => {
  const view = twoClientView();
  const { server, port } = await startTcp(view);
  const c = await Client.open({ port });
  try {
    assert.equal(await c.greeting(), `${GREETING}\r\n`);
    assert.deepEqual(await c.cmd('pid'), ['SUCCESS: pid=4242']);
    assert.deepEqual(await c.cmd('nclients'), ['SUCCESS: nclients=2']);
    assert.deepEqual(await c.cmd('load-stats'), ['SUCCESS: nclients=2,bytesin=1000,bytesout=2000']);
    assert.deepEqual(await c.cmd('version', true), [`OpenVPN Version: ${TITLE}`, 'Management Version: 5', 'END']);
    const help = await c.cmd('help', true);
    assert.equal(help[0], `Management Interface for ${TITLE}`);
    assert.equal(help[1], 'Commands:');
    assert.ok(help.includes('kill IP:port           : Kill the client instance connecting from IP:port.'));
    assert.deepEqual(await c.cmd('frobnicate'), ["ERROR: unknown command, enter 'help' for more options"]);
    assert.deepEqual(await c.cmd('shard-restart 1'), ['SUCCESS: shard 1 restarting']);
    assert.deepEqual(await c.cmd('shard-restart 7'), ['ERROR: no shard 7']);
    assert.deepEqual(await c.cmd('shard-restart x'), ['ERROR: no shard x']);
    assert.deepEqual(await c.cmd('hold'), ["ERROR: The 'hold' command is not supported by the current daemon mode"]);
    // management-client-auth off: no client ever waits, so every verdict fails (after the block for client-auth).
    assert.deepEqual(await c.cmd('client-auth-nt 3 0'), ['ERROR: client-auth command failed']);
    assert.deepEqual(await c.cmd('client-auth 3 0\npush "route 10.9.0.0 255.255.0.0"\nEND'), ['ERROR: client-auth command failed']);
    view.clientAuthEnabled = true;
    view.waiting.set(3, 0);
    assert.deepEqual(await c.cmd('client-auth x 0'), ['ERROR: cannot parse CID']);
    assert.deepEqual(await c.cmd('client-auth 3 y'), ['ERROR: cannot parse KID']);
    assert.deepEqual(await c.cmd('client-deny 3 0'), ["ERROR: the 'client-deny' command requires at least 3 parameters"]);
    assert.deepEqual(await c.cmd('client-auth 3 1\nEND'), ['ERROR: client-auth command failed'], 'wrong key id');
    assert.deepEqual(await c.cmd('client-auth 3 0\npush "route 10.9.0.0 255.255.0.0"\nifconfig-push 10.8.0.9 255.255.255.0\nEND'), [
      'SUCCESS: client-auth command succeeded',
    ]);
    assert.deepEqual(view.verdicts, [
      { cid: 3, keyId: 0, verdict: { allow: true, config: 'push "route 10.9.0.0 255.255.0.0"\nifconfig-push 10.8.0.9 255.255.255.0' } },
    ]);
    assert.deepEqual(await c.cmd('client-deny 3 0 "too late"'), ['ERROR: client-deny command failed'], 'answered already');
    view.waiting.set(5, 0);
    assert.deepEqual(await c.cmd('client-pending-auth 5 0 "WEB_AUTH::https://sso.example.invalid/x" 120'), [
      'SUCCESS: client-pending-auth command succeeded',
    ]);
    assert.deepEqual(view.pendingAuths, [{ cid: 5, keyId: 0, extra: 'WEB_AUTH::https://sso.example.invalid/x', timeoutS: 120 }]);
    assert.deepEqual(await c.cmd('client-pending-auth 5 0 x y'), ['ERROR: cannot parse TIMEOUT']);
    assert.deepEqual(await c.cmd('client-pending-auth 6 0 x 5'), [
      'ERROR: client-pending-auth command failed. Extra parameter might be too long',
    ]);
    view.waiting.set(4, 1);
    assert.deepEqual(await c.cmd('client-deny 4 1 "bad user" "ask the helpdesk"'), ['SUCCESS: client-deny command succeeded']);
    assert.deepEqual(view.verdicts[1], {
      cid: 4,
      keyId: 1,
      verdict: { allow: false, reason: 'bad user', clientReason: 'ask the helpdesk' },
    });
    assert.deepEqual(await c.cmd('verb'), ['SUCCESS: verb=3']);
    assert.deepEqual(await c.cmd('verb 5'), ['SUCCESS: verb level changed']);
    assert.equal(view.verb(), 5);
    assert.deepEqual(await c.cmd('verb 99'), ['ERROR: verb level is out of range']);
    assert.equal(view.verb(), 5);

    const status = await c.cmd('status', true); // default: the configured --status-version (2)
    assert.equal(status[1], 'TIME,2023-11-14 22:16:40,1700000200');
    assert.equal(status.filter((l) => l.startsWith('CLIENT_LIST,')).length, 2);
    assert.equal((await c.cmd('status 1', true))[0], 'OpenVPN CLIENT LIST');
    assert.ok((await c.cmd('status 3', true))[0]!.startsWith('TITLE\t'));
    assert.deepEqual(await c.cmd('status 7'), ['ERROR: bad status format version number']);

    assert.deepEqual(await c.cmd('kill alice'), ["SUCCESS: common name 'alice' found, 1 client(s) killed"]);
    assert.deepEqual(await c.cmd('kill "nobody here"'), ["ERROR: common name 'nobody here' not found"]);
    assert.deepEqual(await c.cmd('kill 192.0.2.9:40000'), ['SUCCESS: 1 client(s) at address 192.0.2.9:40000 killed']);
    assert.deepEqual(await c.cmd('kill 1.2.3.4:5'), ['ERROR: client at address 1.2.3.4:5 not found']);
    assert.deepEqual(await c.cmd('kill 1.2.3.4:0'), ['ERROR: port number is out of range: 0']);
    assert.deepEqual(await c.cmd('kill a.b:7'), ['ERROR: error parsing IP address: a.b']);
    assert.deepEqual(await c.cmd('kill'), ["ERROR: the 'kill' command requires 1 parameter"]);
    assert.deepEqual(await c.cmd('client-kill 5 HALT'), ['SUCCESS: client-kill command succeeded']);
    assert.deepEqual(await c.cmd('client-kill 0'), ['SUCCESS: client-kill command succeeded']);
    assert.deepEqual(await c.cmd('client-kill 99'), ['ERROR: client-kill command failed']);
    assert.deepEqual(await c.cmd('client-kill x'), ['ERROR: cannot parse CID']);
    assert.deepEqual(await c.cmd('client-kill'), ["ERROR: the 'client-kill' command requires at least 1 parameter"]);
    assert.deepEqual(view.kills, [
      'cn alice',
      'cn nobody here',
      'addr 192.0.2.9:40000',
      'addr 1.2.3.4:5',
      'cid 5 HALT',
      'cid 0 (default)',
      'cid 99 (default)',
    ]);

    assert.deepEqual(await c.cmd('signal SIGUSR2'), ['SUCCESS: signal SIGUSR2 thrown']);
    assert.deepEqual(await c.cmd('signal SIGHUP'), ['SUCCESS: signal SIGHUP thrown']);
    assert.deepEqual(await c.cmd('signal FOO'), ["ERROR: signal 'FOO' is not a known signal type"]);
    assert.deepEqual(view.signals, ['SIGUSR2', 'SIGHUP']);

    assert.deepEqual(await c.cmd('log'), ["ERROR: the 'log' command requires at least 1 parameter"]);
    assert.deepEqual(await c.cmd('log bogus'), ["ERROR: log parameter must be 'on' or 'off' or some number n or 'all'"]);
    server.log('Initialization Sequence Completed');
    server.log('something odd', 'W');
    server.log('third');
    assert.deepEqual(await c.cmd('log all', true), [
      '1700000200,I,Initialization Sequence Completed',
      '1700000200,W,something odd',
      '1700000200,I,third',
      'END',
    ]);
    assert.deepEqual(await c.cmd('log 1', true), ['1700000200,I,third', 'END']);
    assert.deepEqual(await c.cmd('log on'), ['SUCCESS: real-time log notification set to ON']);
    server.log('live line');
    assert.equal(await c.waitFor((t) => t.endsWith('\r\n')), '>LOG:1700000200,I,live line\r\n');
    assert.deepEqual(await c.cmd('log off'), ['SUCCESS: real-time log notification set to OFF']);

    server.setState({ name: 'CONNECTING' });
    server.setState({
      name: 'CONNECTED',
      detail: 'SUCCESS',
      localIp: '10.8.0.1',
      local: { address: '127.0.0.1', port: 1194 },
      localIp6: 'fd00::1',
    });
    assert.deepEqual(await c.cmd('state', true), ['1700000200,CONNECTED,SUCCESS,10.8.0.1,,,127.0.0.1,1194,fd00::1', 'END']);
    assert.deepEqual(await c.cmd('state all', true), [
      '1700000200,CONNECTING,,,,,,',
      '1700000200,CONNECTED,SUCCESS,10.8.0.1,,,127.0.0.1,1194,fd00::1',
      'END',
    ]);

    assert.deepEqual(await c.cmd('state on'), ['SUCCESS: real-time state notification set to ON']);
    server.setState({ name: 'EXITING', detail: 'SIGTERM' });
    assert.equal(await c.waitFor((t) => t.endsWith('\r\n')), '>STATE:1700000200,EXITING,SIGTERM,,,,,\r\n');
    c.take();
    assert.deepEqual(await c.cmd('state off'), ['SUCCESS: real-time state notification set to OFF']);

    assert.deepEqual(await c.cmd('bytecount'), ["ERROR: the 'bytecount' command requires 1 parameter"]);
    assert.deepEqual(await c.cmd('bytecount 1'), ['SUCCESS: bytecount interval changed']);
    const counts = await c.waitFor((t) => t.split('\r\n').length >= 3, 2500);
    assert.equal(c.take(), '>BYTECOUNT_CLI:0,11,22\r\n>BYTECOUNT_CLI:5,33,44\r\n');
    assert.ok(counts.length > 0);
    assert.deepEqual(await c.cmd('bytecount 0'), ['SUCCESS: bytecount interval changed']);
    await new Promise((r) => setTimeout(r, 1200));
    assert.equal(c.take(), '', 'bytecount 0 stops the updates');

    c.socket.write('quit\n');
    await c.waitFor(() => false, 1000);
    assert.ok(c.closed, 'quit closes the session');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(server.sessionCount, 0, 'and forgets it');
  } finally {
    c.end();
    await server.close();
  }
});

test('shard-fault exists only with SHARDVPN_FAULT_INJECTION=1, and is listed in help only then', async () => {
  const view = twoClientView();
  const { server, port } = await startTcp(view);
  const c = await Client.open({ port });
  const saved = process.env.SHARDVPN_FAULT_INJECTION;
  try {
    await c.greeting();
    delete process.env.SHARDVPN_FAULT_INJECTION;
    assert.deepEqual(await c.cmd('shard-fault 1 throw'), ["ERROR: unknown command, enter 'help' for more options"]);
    assert.ok(!(await c.cmd('help', true)).some((line) => line.includes('shard-fault')));
    process.env.SHARDVPN_FAULT_INJECTION = '0';
    assert.deepEqual(await c.cmd('shard-fault 1 throw'), ["ERROR: unknown command, enter 'help' for more options"]);
    assert.deepEqual(view.shardFaults, []);

    process.env.SHARDVPN_FAULT_INJECTION = '1';
    assert.ok((await c.cmd('help', true)).some((line) => line.startsWith('shard-fault n throw|exit')));
    assert.deepEqual(await c.cmd('shard-fault 1 throw'), ["SUCCESS: shard 1 fault 'throw' injected"]);
    assert.deepEqual(await c.cmd('shard-fault 0 exit'), ["SUCCESS: shard 0 fault 'exit' injected"]);
    assert.deepEqual(await c.cmd('shard-fault 7 exit'), ['ERROR: no shard 7']);
    assert.deepEqual(await c.cmd('shard-fault 0 hang'), ["ERROR: shard-fault: 'hang' is not one of throw, exit"]);
    assert.deepEqual(await c.cmd('shard-fault 0'), ["ERROR: the 'shard-fault' command requires 2 parameters"]);
    assert.deepEqual(view.shardFaults, [
      [1, 'throw'],
      [0, 'exit'],
    ]);
  } finally {
    if (saved === undefined) delete process.env.SHARDVPN_FAULT_INJECTION;
    else process.env.SHARDVPN_FAULT_INJECTION = saved;
    c.end();
    await server.close();
  }
});

test('password: prompt, silent retry, success, and three strikes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'shardvpn-mgmt-'));
  const view = twoClientView();
  try {
    const pwFile = join(dir, 'pw');
    writeFileSync(pwFile, 'sekrit\nignored second line\n');
    const { server, port } = await startTcp(view, { password: readManagementPassword(pwFile) });
    try {
      const a = await Client.open({ port });
      assert.equal(await a.waitFor((t) => t === 'ENTER PASSWORD:'), 'ENTER PASSWORD:', 'the prompt has no line end');
      a.take();
      a.socket.write('pid\n'); // taken as a wrong password: OpenVPN answers only with the prompt
      assert.equal(await a.waitFor((t) => t.length >= 15), 'ENTER PASSWORD:');
      a.take();
      view.emit({ type: 'established', cid: 1, env: {} });
      a.socket.write('sekrit\n');
      assert.equal(
        await a.waitFor((t) => t.endsWith(`${GREETING}\r\n`)),
        `SUCCESS: password is correct\r\n${GREETING}\r\n`,
        'no notification before the password',
      );
      a.take();
      assert.deepEqual(await a.cmd('pid'), ['SUCCESS: pid=4242']);
      a.end();

      const b = await Client.open({ port });
      await b.waitFor((t) => t === 'ENTER PASSWORD:');
      b.socket.write('x\ny\n');
      await new Promise((r) => setTimeout(r, 100));
      b.socket.write('z\n');
      await b.waitFor(() => false, 1500);
      assert.ok(b.closed, 'closed after three wrong passwords');
      assert.ok(!b.take().includes('SUCCESS'));
    } finally {
      await server.close();
    }
    assert.throws(() => readManagementPassword(join(dir, 'absent')), /management password file .*absent: cannot read it/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('client notifications reach every management client, in order, with n_clients and env', async () => {
  const view = twoClientView();
  const { server, port } = await startTcp(view);
  const a = await Client.open({ port });
  const b = await Client.open({ port });
  try {
    await a.greeting();
    await b.greeting();
    assert.deepEqual(await b.cmd('env-filter 2'), ['SUCCESS: env_filter_level=2']);
    const env = { common_name: 'alice', untrusted_ip: '198.51.100.7', untrusted_port: '51820' };
    view.emit({ type: 'connect', cid: 3, keyId: 0, env });
    view.emit({ type: 'address', cid: 3, address: '10.8.0.2', primary: true });
    view.emit({ type: 'address', cid: 3, address: '10.200.0.0/24', primary: false });
    view.emit({ type: 'established', cid: 3, env });
    view.emit({ type: 'disconnect', cid: 3, env: { ...env, bytes_received: '10', bytes_sent: '20' } });
    const expected = [
      '>CLIENT:CONNECT,3,0',
      '>CLIENT:ENV,n_clients=2',
      '>CLIENT:ENV,common_name=alice',
      '>CLIENT:ENV,untrusted_ip=198.51.100.7',
      '>CLIENT:ENV,untrusted_port=51820',
      '>CLIENT:ENV,END',
      '>CLIENT:ADDRESS,3,10.8.0.2,1',
      '>CLIENT:ADDRESS,3,10.200.0.0/255.255.255.0,0',
      '>CLIENT:ESTABLISHED,3',
      '>CLIENT:ENV,n_clients=2',
      '>CLIENT:ENV,common_name=alice',
      '>CLIENT:ENV,untrusted_ip=198.51.100.7',
      '>CLIENT:ENV,untrusted_port=51820',
      '>CLIENT:ENV,END',
      '>CLIENT:DISCONNECT,3',
      '>CLIENT:ENV,common_name=alice',
      '>CLIENT:ENV,untrusted_ip=198.51.100.7',
      '>CLIENT:ENV,untrusted_port=51820',
      '>CLIENT:ENV,bytes_received=10',
      '>CLIENT:ENV,bytes_sent=20',
      '>CLIENT:ENV,END',
    ];
    assert.equal(await a.waitFor((t) => t.split('\r\n').length > expected.length), expected.join('\r\n') + '\r\n');
    // env-filter 2 passes only OpenVPN's listed names (untrusted_ip, bytes_*); n_clients is filtered too.
    const filtered = expected.filter((l) => !/common_name|untrusted_port|n_clients/.test(l));
    assert.equal(await b.waitFor((t) => t.split('\r\n').length > filtered.length), filtered.join('\r\n') + '\r\n');
  } finally {
    a.end();
    b.end();
    await server.close();
  }
  assert.equal(view.listenerCount, 0, 'close() unsubscribes');
});

test('garbage, over-long lines, floods and vanishing clients never disturb another client', async () => {
  const view = twoClientView();
  const notes: string[] = [];
  const { server, port } = await startTcp(view, { maxPendingOutput: 64 * 1024, logger: (m) => notes.push(m) });
  const good = await Client.open({ port });
  const bad = await Client.open({ port });
  try {
    await good.greeting();
    await bad.greeting();
    // Binary garbage: non-printable bytes are dropped, what is left is an unknown command.
    bad.socket.write(Buffer.from([0x00, 0xff, 0x01, 0x70, 0x80, 0x69, 0x1b, 0x64, 0x0d, 0x0a])); // "pid" hidden in garbage
    assert.deepEqual((await bad.waitFor((t) => t.endsWith('\r\n'))).split('\r\n')[0], 'SUCCESS: pid=4242');
    bad.take();
    bad.socket.write(Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x0a]));
    assert.equal(await bad.waitFor((t) => t.endsWith('\r\n')), '', 'a line of only dropped bytes is an empty command: no reply');
    // An over-long line: discarded, one ERROR at its newline, then the session goes on.
    bad.socket.write('x'.repeat(5000));
    assert.deepEqual(await good.cmd('pid'), ['SUCCESS: pid=4242'], 'the other client is served meanwhile');
    bad.socket.write('y'.repeat(5000) + '\npid\n');
    assert.equal(
      await bad.waitFor((t) => t.split('\r\n').length >= 3),
      'ERROR: command line longer than 1024 bytes, discarded\r\nSUCCESS: pid=4242\r\n',
    );
    bad.take();
    // A flood from a client that does not read: dropped once its unread output passes the bound.
    bad.socket.pause();
    const burst = 'status 2\n'.repeat(20_000);
    bad.socket.write(burst);
    const deadline = Date.now() + 5000;
    while (server.sessionCount > 1 && Date.now() < deadline) {
      assert.deepEqual(await good.cmd('nclients'), ['SUCCESS: nclients=2']);
    }
    assert.equal(server.sessionCount, 1, 'the flooding client was disconnected');
    assert.ok(notes.some((n) => n.includes('bytes of output unread')));
    // A client vanishing in the middle of a command.
    const gone = await Client.open({ port });
    await gone.greeting();
    gone.socket.write('stat');
    gone.end();
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(server.sessionCount, 1);
    view.emit({ type: 'established', cid: 9, env: {} });
    assert.equal(
      await good.waitFor((t) => t.endsWith('END\r\n')),
      '>CLIENT:ESTABLISHED,9\r\n>CLIENT:ENV,n_clients=2\r\n>CLIENT:ENV,END\r\n',
    );
    good.take();
    assert.deepEqual(await good.cmd('pid'), ['SUCCESS: pid=4242']);
  } finally {
    good.end();
    bad.end();
    await server.close();
  }
});

test('listen errors name the directive; unix sockets; close() closes every client', async () => {
  const view = twoClientView();
  const { server, port } = await startTcp(view);
  const clash = new ManagementServer({ listen: { kind: 'tcp', host: '127.0.0.1', port }, view });
  await assert.rejects(
    clash.start(),
    new RegExp(`^Error: management 127\\.0\\.0\\.1 ${port}: cannot listen: address already in use \\(EADDRINUSE\\)$`),
  );
  const c = await Client.open({ port });
  await c.greeting();
  await server.close();
  await c.waitFor(() => false, 1000);
  assert.ok(c.closed, 'close() ends the sessions');

  const dir = mkdtempSync(join(tmpdir(), 'shardvpn-mgmt-'));
  try {
    const path = join(dir, 'mgmt.sock');
    // A stale socket left by a crashed process is replaced, as OpenVPN does.
    // A process that exits without closing its listener leaves the socket file behind.
    execFileSync(process.execPath, ['-e', "require('net').createServer().listen(process.argv[1], () => process.exit(0))", path]);
    assert.ok(existsSync(path));
    const unix = new ManagementServer({ listen: { kind: 'unix', path }, view });
    await unix.start();
    const u = await Client.open({ path });
    assert.equal(await u.greeting(), `${GREETING}\r\n`);
    assert.deepEqual(await u.cmd('pid'), ['SUCCESS: pid=4242']);
    await unix.close();
    assert.ok(!existsSync(path), 'the socket file is removed on close');
    writeFileSync(path, 'not a socket');
    await assert.rejects(
      new ManagementServer({ listen: { kind: 'unix', path }, view }).start(),
      /management .*mgmt\.sock unix: .* is not a socket/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.deepEqual(managementListenFromOptions({ address: '127.0.0.1', port: '7505', unix: false, passwordFile: 'pw' }), {
    ok: true,
    listen: { kind: 'tcp', host: '127.0.0.1', port: 7505 },
    passwordFile: 'pw',
  });
  assert.deepEqual(managementListenFromOptions({ address: '/run/m.sock', port: 'unix', unix: true }), {
    ok: true,
    listen: { kind: 'unix', path: '/run/m.sock' },
  });
  assert.equal(managementListenFromOptions({ address: '127.0.0.1', port: 'x', unix: false }).ok, false);
});

test('replies match a real OpenVPN 2.6 server', { timeout: 45_000 }, async () => {
  const real = await startRealServers([2]);
  const view = twoClientView();
  const { server, port } = await startTcp(view);
  const ours = await Client.open({ port });
  const theirs = await Client.open({ path: real.servers[0]!.managementPath });
  try {
    assert.equal(await theirs.greeting(), await ours.greeting());
    const both = async (cmd: string, multiline = false): Promise<[string[], string[]]> => [
      await ours.cmd(cmd, multiline),
      await theirs.cmd(cmd, multiline),
    ];

    for (const reply of await both('pid')) assert.match(reply.join('|'), /^SUCCESS: pid=\d+$/);
    const [ls, tls] = await both('load-stats');
    assert.equal(ls.length, 1);
    assert.equal(tls.length, 1);
    for (const l of [ls[0]!, tls[0]!]) assert.match(l, /^SUCCESS: nclients=\d+,bytesin=\d+,bytesout=\d+$/);
    assert.deepEqual(...((await both('nclients')).map((r) => r.map((l) => l.replace(/\d+/, 'N'))) as [string[], string[]]));
    const [ov, tv] = await both('version', true);
    assert.equal(ov.length, tv.length);
    assert.deepEqual(
      ov.map((l) => l.split(':')[0]),
      tv.map((l) => l.split(':')[0]),
    );
    assert.equal(ov[1], tv[1]);
    const [os, ts] = await both('status 2', true);
    const shape = (lines: string[]): string[] =>
      lines.map((l) => (l.startsWith('HEADER') || l === 'END' ? l : l.split(',')[0]!)).filter((l, i, a) => l !== a[i - 1]);
    assert.deepEqual(shape(os), shape(ts));
    assert.deepEqual(
      os.filter((l) => l.startsWith('HEADER')),
      ts.filter((l) => l.startsWith('HEADER')),
    );
    const columns = (lines: string[]): Map<string, number> =>
      new Map(lines.filter((l) => l !== 'END').map((l) => [l.startsWith('HEADER') ? l : l.split(',')[0]!, l.split(',').length]));
    const theirColumns = columns(ts);
    theirColumns.set('TITLE', columns(os).get('TITLE')!); // the title text has its own commas
    assert.deepEqual(columns(os), theirColumns, 'same column count for each line kind');
    for (const cmd of [
      'frobnicate',
      'kill nobody',
      'kill 1.2.3.4:5',
      'kill 1.2.3.4:0',
      'kill a.b:7',
      'kill',
      'client-kill 99',
      'client-kill x',
      'client-kill',
      'signal FOO',
      'log',
      'log bogus',
      'bytecount',
      'status 7',
      'bytecount 0',
      'log off',
      'env-filter 2',
      'verb',
      'verb 16',
      'verb -1',
      'verb 4',
      'verb',
      'verb 3',
      'client-auth-nt 1 0',
      'client-deny 1 0 x',
      'client-auth-nt x 0',
      'client-deny 1',
      'client-auth-nt 1',
      'client-pending-auth 1 0 x 30',
      'client-pending-auth 1 0 x',
      'client-pending-auth 1 0 x y',
    ]) {
      const [o, t] = await both(cmd);
      assert.deepEqual(o, t, cmd);
    }
  } finally {
    ours.end();
    theirs.end();
    await server.close();
    real.cleanup();
  }
});

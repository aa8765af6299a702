// Operations of a live server. Status files: OpenVPN 2.6 and shardvpn run the same server config
// (each in its own lab of namespaces) for the same stock client, and their status files of
// versions 1, 2 and 3 must have the same line kinds, headers, column counts and field formats.
// Management: a live shardvpn's unix socket (reachable from the test process through the file
// system) answers status, load-stats and kill, and notifies client connects and disconnects,
// while a second management client sends garbage; `kill CN` among two clients drops only that one.
process.env.TZ = 'UTC'; // spawned servers inherit it: both files print the same time zone
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { SERVER_UNDERLAY, VpnLab, type LabProcess } from '../lab/vpn-lab';
import { ManagementClient, waitUntil } from './helpers/management-client';

let openvpnLab: VpnLab;
/** The v2 CLIENT_LIST rows of both servers, read right after the client connected. */
let clientRows: { openvpn: string; shardvpn: string } | null = null;
let shardvpnLab: VpnLab;
before(() => {
  openvpnLab = VpnLab.create(1);
  shardvpnLab = VpnLab.create(1);
});
after(async () => {
  await Promise.all([openvpnLab.cleanup(), shardvpnLab.cleanup()]);
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The server config both implementations run (only the file paths differ). */
function serverConfig(lab: VpnLab, statusFile: string, version: 1 | 2 | 3): string {
  return (
    `port 1194\nproto udp\ndev tun\ntopology subnet\nserver 10.154.0.0 255.255.255.0\nserver-ipv6 fd00:154::/64\n` +
    `keepalive 10 60\n${lab.serverTlsLines()}dh none\nstatus ${statusFile} 1\nstatus-version ${version}\nverb 3\n`
  );
}

function clientConfig(lab: VpnLab): string {
  return `client\ndev tun\nproto udp\nremote ${SERVER_UNDERLAY} 1194\nnobind\nexplicit-exit-notify 1\n${lab.clientTlsLines()}verb 3\n`;
}

const TIME = String.raw`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d`;
const UNIX = String.raw`\d{9,10}`;
const V4_PORT = String.raw`\d+\.\d+\.\d+\.\d+:\d+`;
const V4 = String.raw`\d+\.\d+\.\d+\.\d+`;
const V6 = '[0-9a-f:]+';
const ROUTE = `(?:${V4}|${V6})(?:/\\d+)?C?`;
/** Field formats of the data rows, column by column; the first field names the row kind. */
const V2_FORMATS: Record<string, readonly string[]> = {
  TITLE: ['TITLE', '.+'],
  TIME: ['TIME', TIME, UNIX],
  CLIENT_LIST: [
    'CLIENT_LIST',
    '[^,\t]+',
    V4_PORT,
    V4,
    V6,
    String.raw`\d+`,
    String.raw`\d+`,
    TIME,
    UNIX,
    '[^,\t]+',
    String.raw`\d+`,
    String.raw`\d+`,
    '[A-Z0-9-]+',
  ],
  ROUTING_TABLE: ['ROUTING_TABLE', ROUTE, '[^,\t]+', V4_PORT, TIME, UNIX],
  GLOBAL_STATS: ['GLOBAL_STATS', '[^,\t]+', String.raw`\d+`],
  END: ['END'],
};
/** Version 1 rows by section: lines that are not section titles or headers. */
const V1_FORMATS: Record<string, readonly string[]> = {
  'OpenVPN CLIENT LIST': ['Updated', TIME],
  'Common Name,Real Address,Bytes Received,Bytes Sent,Connected Since': ['[^,]+', V4_PORT, String.raw`\d+`, String.raw`\d+`, TIME],
  'Virtual Address,Common Name,Real Address,Last Ref': [ROUTE, '[^,]+', V4_PORT, TIME],
  'GLOBAL STATS': ['Max bcast/mcast queue length', String.raw`\d+`],
};
const V1_FIXED = new Set([
  'OpenVPN CLIENT LIST',
  ...Object.keys(V1_FORMATS).filter((k) => k.includes(',')),
  'ROUTING TABLE',
  'GLOBAL STATS',
  'END',
]);

/** What a status file looks like with the values taken out: one shape string per line. */
function shape(lines: readonly string[], version: 1 | 2 | 3): string[] {
  if (version === 1) {
    let section = '';
    return lines.map((line) => {
      if (V1_FIXED.has(line)) {
        if (line !== 'ROUTING TABLE') section = line;
        return line;
      }
      const formats = V1_FORMATS[section];
      assert.ok(formats !== undefined, `v1 line outside a known section: ${line}`);
      const fields = line.split(',');
      assert.equal(fields.length, formats.length, `v1 column count of ${JSON.stringify(line)}`);
      fields.forEach((f, c) => assert.match(f, new RegExp(`^(?:${formats[c]})$`), `v1 column ${c} of ${JSON.stringify(line)}`));
      return `${section}: ${fields.length} columns`;
    });
  }
  const sep = version === 3 ? '\t' : ',';
  return lines.map((line) => {
    // Headers must match exactly; the TITLE's text may hold the other separator.
    if (line.startsWith(`HEADER${sep}`)) return line;
    const fields = line.startsWith(`TITLE${sep}`) ? ['TITLE', line.slice(6)] : line.split(sep);
    const formats = V2_FORMATS[fields[0] as string];
    assert.ok(formats !== undefined, `v${version} unknown line kind: ${JSON.stringify(line)}`);
    assert.equal(fields.length, formats.length, `v${version} column count of ${JSON.stringify(line)}`);
    fields.forEach((f, c) => assert.match(f, new RegExp(`^(?:${formats[c]})$`), `v${version} column ${c} of ${JSON.stringify(line)}`));
    return `${fields[0]}: ${fields.length} columns`;
  });
}

/** Starts the server (openvpn or shardvpn) and the stock client of one lab; resolves with the status lines. */
async function serveOneClient(
  lab: VpnLab,
  kind: 'openvpn' | 'shardvpn',
  version: 1 | 2 | 3,
): Promise<{ lines: string[]; stop: () => Promise<void> }> {
  const statusFile = path.join(lab.dir, `status-v${version}`);
  const config = serverConfig(lab, statusFile, version);
  let server: LabProcess;
  if (kind === 'shardvpn') {
    server = await lab.startShardvpn(config, `server-v${version}.conf`);
  } else {
    server = lab.spawn(lab.server, 'openvpn', ['--config', lab.file(`server-v${version}.conf`, config)], 'openvpn server');
    await server.waitFor(/Initialization Sequence Completed/);
  }
  const client = await lab.startOpenvpnClient(0, clientConfig(lab));
  const stop = async (): Promise<void> => {
    await client.stop();
    await server.stop();
  };
  try {
    // The file is rewritten every second; wait for one that lists the client and its routes.
    const listed = (): boolean => {
      const text = existsSync(statusFile) ? readFileSync(statusFile, 'utf8') : '';
      return text.includes('10.154.0.2') && text.includes('fd00:154::1000');
    };
    await waitUntil(
      `${kind}'s status file to list the client`,
      listed,
      10_000,
      () => (existsSync(statusFile) ? readFileSync(statusFile, 'utf8') : 'no file') + server.log().slice(-2000),
    );
    const text = readFileSync(statusFile, 'utf8');
    assert.ok(text.endsWith('\nEND\n'), `${kind} v${version}: ends with END and \\n`);
    return { lines: text.split('\n').slice(0, -1), stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

test('status files of versions 1, 2 and 3: the same shape from OpenVPN 2.6 and shardvpn', { timeout: 60_000 }, async (t) => {
  clientRows = null;
  for (const version of [1, 2, 3] as const) {
    const started = await Promise.allSettled([
      serveOneClient(openvpnLab, 'openvpn', version),
      serveOneClient(shardvpnLab, 'shardvpn', version),
    ]);
    const [theirs, ours] = started.map((s) => (s.status === 'fulfilled' ? s.value : null));
    try {
      for (const s of started) if (s.status === 'rejected') throw s.reason;
      assert.ok(theirs && ours);
      if (version === 2) {
        clientRows = {
          openvpn: theirs.lines.find((l) => l.startsWith('CLIENT_LIST,')) ?? '',
          shardvpn: ours.lines.find((l) => l.startsWith('CLIENT_LIST,')) ?? '',
        };
        t.diagnostic(`client rows: openvpn ${clientRows.openvpn} | shardvpn ${clientRows.shardvpn}`);
      }
      const context = `\n--- openvpn ---\n${theirs.lines.join('\n')}\n--- shardvpn ---\n${ours.lines.join('\n')}`;
      assert.deepEqual(
        shape(ours.lines, version),
        shape(theirs.lines, version),
        `v${version}: same line kinds, headers and columns${context}`,
      );
      // Both assigned the first pool addresses to their one client.
      const routes = (lines: string[]): string[] =>
        lines
          .filter((l) => /^(?:ROUTING_TABLE[,\t])?(?:10\.154|fd00:154)/.test(l))
          .map((l) => l.split(/[,\t]/)[version === 1 ? 0 : 1] as string)
          .sort();
      assert.deepEqual(routes(ours.lines), ['10.154.0.2', 'fd00:154::1000'], context);
      assert.deepEqual(routes(theirs.lines), ['10.154.0.2', 'fd00:154::1000'], context);
    } finally {
      await Promise.all([theirs?.stop(), ours?.stop()]);
    }
  }
});

// OpenVPN's Bytes Received/Sent count every link byte of the client, the TLS handshake included
// (about 2 kB each way right after connecting here); so do shardvpn's.
test('status byte counts include the control channel, as OpenVPN counts them', () => {
  assert.ok(clientRows !== null, 'the parity test ran');
  const bytes = (row: string): [number, number] => [Number(row.split(',')[5]), Number(row.split(',')[6])];
  const [theirIn, theirOut] = bytes(clientRows.openvpn);
  const [ourIn, ourOut] = bytes(clientRows.shardvpn);
  assert.ok(theirIn > 1000 && theirOut > 1000, clientRows.openvpn);
  assert.ok(ourIn > theirIn / 2 && ourOut > theirOut / 2, `shardvpn ${ourIn},${ourOut} vs openvpn ${theirIn},${theirOut}`);
});

test('management interface of a live shardvpn server: status, load-stats, kill, notifications, garbage', { timeout: 60_000 }, async () => {
  const lab = shardvpnLab;
  const socketPath = path.join(lab.dir, 'management.sock');
  // The server pushes ping 1 / ping-restart 5: a client killed without a word reconnects soon.
  const server = await lab.startShardvpn(
    `port 1194\nproto udp\ndev tun\ntopology subnet\nserver 10.155.0.0 255.255.255.0\nkeepalive 1 5\n${lab.serverTlsLines()}` +
      `management ${socketPath} unix\nverb 3\n`,
    'server-management.conf',
  );
  // The operations start after the data path is up ("Initialization Sequence Completed").
  await server.waitFor(/MANAGEMENT: unix domain socket listening on /, 5000);
  const operator = new ManagementClient(socketPath);
  const vandal = new ManagementClient(socketPath);
  let client: LabProcess | null = null;
  try {
    await operator.waitLine(/^>INFO:OpenVPN Management Interface Version 5/);
    await vandal.waitLine(/^>INFO:OpenVPN Management Interface Version 5/);
    assert.deepEqual(await operator.command('load-stats'), ['SUCCESS: nclients=0,bytesin=0,bytesout=0']);

    // The vandal sends binary garbage, an over-long line, a broken quote and an unsupported
    // command: it gets its errors, the operator sees none of them.
    const operatorLinesBefore = operator.lines.length;
    const garbage = Buffer.alloc(4096);
    for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 151 + 7) & 0xff;
    vandal.write(garbage);
    vandal.write(`\n${'x'.repeat(5000)}\n\0\0\xff\n"unterminated\nhold on\n`);
    await vandal.waitLine(/^ERROR: command line longer than 1024 bytes, discarded$/);
    await vandal.waitLine(/^ERROR: The 'hold' command is not supported by the current daemon mode$/);

    // A client connects: CONNECT, ENV..., END, then ESTABLISHED.
    const connectFrom = operator.lines.length;
    client = await lab.startOpenvpnClient(0, clientConfig(lab).replace('verb 3', 'verb 3\nconnect-retry 1'));
    const connectAt = await operator.waitLine(/^>CLIENT:CONNECT,\d+,\d+$/, connectFrom);
    const cid = (operator.lines[connectAt] as string).split(/[,]/)[1] as string;
    const envEnd = await operator.waitLine(/^>CLIENT:ENV,END$/, connectAt);
    const connectEnv = operator.lines.slice(connectAt + 1, envEnd);
    assert.ok(connectEnv.includes('>CLIENT:ENV,common_name=client'), connectEnv.join('\n'));
    assert.ok(
      connectEnv.some((l) => /^>CLIENT:ENV,trusted_ip=10\.150\.0\.10$/.test(l)),
      connectEnv.join('\n'),
    );
    await operator.waitLine(new RegExp(`^>CLIENT:ESTABLISHED,${cid}$`), connectAt);
    assert.ok(
      operator.lines.slice(operatorLinesBefore).every((l) => !l.startsWith('ERROR')),
      "the vandal's errors went to the vandal only",
    );

    // status 2 lists the client; load-stats counts it.
    const status = await operator.command('status 2', /^END$/);
    assert.match(status[0] as string, /^TITLE,shardvpn /);
    const row = status.find((l) => l.startsWith('CLIENT_LIST,'));
    assert.ok(row !== undefined, status.join('\n'));
    assert.match(
      row,
      new RegExp(`^CLIENT_LIST,client,10\\.150\\.0\\.10:\\d+,10\\.155\\.0\\.2,,\\d+,\\d+,${TIME},${UNIX},UNDEF,${cid},\\d+,AES-256-GCM$`),
    );
    assert.ok(status.includes('HEADER,ROUTING_TABLE,Virtual Address,Common Name,Real Address,Last Ref,Last Ref (time_t)'));
    const stats = await operator.command('load-stats');
    assert.match(stats[0] as string, /^SUCCESS: nclients=1,bytesin=\d+,bytesout=\d+$/);
    // The vandal, after all its garbage, still gets proper answers too.
    assert.match((await vandal.command('load-stats'))[0] as string, /^SUCCESS: nclients=1,/);

    // kill by common name: the server drops the client at once, says so, and counts 0 clients.
    const killFrom = operator.lines.length;
    assert.deepEqual(await operator.command('kill client'), ["SUCCESS: common name 'client' found, 1 client(s) killed"]);
    await operator.waitLine(new RegExp(`^>CLIENT:DISCONNECT,${cid}$`), killFrom);
    await server.waitFor(/client\/10\.150\.0\.10:\d+ disconnected/, 5000);
    assert.deepEqual(await operator.command('nclients'), ['SUCCESS: nclients=0']);
    assert.deepEqual(await operator.command('kill client'), ["ERROR: common name 'client' not found"]);

    // Unaware of the kill, the client restarts after ping-restart and comes back with a new cid.
    const again = await operator.waitLine(/^>CLIENT:ESTABLISHED,\d+$/, killFrom, 25_000);
    const cid2 = (operator.lines[again] as string).split(',')[1] as string;
    assert.notEqual(cid2, cid);
    assert.match((await operator.command('load-stats'))[0] as string, /^SUCCESS: nclients=1,/);

    // Some tunnel traffic, then the client leaves (explicit-exit-notify): DISCONNECT with the
    // totals in its env.
    await client.waitFor(/Initialization Sequence Completed[\s\S]*Initialization Sequence Completed/, 10_000);
    assert.equal(lab.ping(lab.clients[0]!, '10.155.0.1', 2), 2);
    const leaveFrom = operator.lines.length;
    await client.stop();
    client = null;
    const gone = await operator.waitLine(new RegExp(`^>CLIENT:DISCONNECT,${cid2}$`), leaveFrom);
    const goneEnd = await operator.waitLine(/^>CLIENT:ENV,END$/, gone);
    const goneEnv = operator.lines.slice(gone + 1, goneEnd);
    assert.ok(
      goneEnv.some((l) => /^>CLIENT:ENV,bytes_received=[1-9]\d*$/.test(l)),
      goneEnv.join('\n'),
    );
    assert.ok(
      goneEnv.some((l) => /^>CLIENT:ENV,bytes_sent=[1-9]\d*$/.test(l)),
      goneEnv.join('\n'),
    );
    assert.deepEqual(await operator.command('nclients'), ['SUCCESS: nclients=0']);

    // The vandal vanishes mid-command; the operator carries on.
    vandal.write('status 3\nlog all\nstat');
    vandal.close();
    assert.deepEqual(await operator.command('pid'), [`SUCCESS: pid=${server.child.pid}`]);
    operator.write('quit\n');
    await waitUntil('the server to close the quitting session', () => operator.isClosed, 3000);
  } finally {
    operator.close();
    vandal.close();
    await client?.stop();
    await server.stop();
  }
});

// Two stock clients with different common names; `kill revoked` drops exactly that one. The
// server sends it nothing, so only its ping-restart (keepalive 1 3 pushes ping-restart 3) tells
// it; the other client's tunnel carries a ping every 0.2 s across the kill without a loss. A
// second management client half-sends `kill client` (no newline) and hangs up: nothing happens.
test('management kill by common name drops only that client; a half-sent command does nothing', { timeout: 40_000 }, async () => {
  const lab = VpnLab.create(2);
  const socketPath = path.join(lab.dir, 'management-kill.sock');
  const operator: ManagementClient[] = [];
  try {
    const server = await lab.startShardvpn(
      `port 1194\nproto udp\ndev tun\ntopology subnet\nserver 10.156.0.0 255.255.255.0\nkeepalive 1 3\n${lab.serverTlsLines()}` +
        `management ${socketPath} unix\nverb 3\n`,
      'server-kill.conf',
    );
    await server.waitFor(/MANAGEMENT: unix domain socket listening on /, 5000);
    const op = new ManagementClient(socketPath);
    const halfSender = new ManagementClient(socketPath);
    operator.push(op, halfSender);
    await op.waitLine(/^>INFO:OpenVPN Management Interface Version 5/);
    await halfSender.waitLine(/^>INFO:OpenVPN Management Interface Version 5/);

    const revokedCert = lab.file('revoked.crt', lab.pki.revokedClientCert);
    const revokedKey = lab.file('revoked.key', lab.pki.revokedClientKey);
    const base = `client\ndev tun\nproto udp\nremote ${SERVER_UNDERLAY} 1194\nnobind\nexplicit-exit-notify 1\nca ${lab.pki.files.ca}\nremote-cert-tls server\nverb 3\n`;
    const [kept, victim] = await Promise.all([
      // Only the kept client: a pushed ping-restart 3 could fire on a 2-3 s stall of a slow box,
      // and this client must never restart.
      lab.startOpenvpnClient(
        0,
        `${base}cert ${lab.pki.files.clientCert}\nkey ${lab.pki.files.clientKey}\npull-filter ignore "ping-restart"\nping-restart 30\n`,
      ),
      lab.startOpenvpnClient(1, `${base}cert ${revokedCert}\nkey ${revokedKey}\n`),
    ]);
    // status 2 CLIENT_LIST rows as `common name/client id`, sorted.
    const listed = async (): Promise<string[]> => {
      const status = await op.command('status 2', /^END$/);
      return status
        .filter((l) => l.startsWith('CLIENT_LIST,'))
        .map((l) => {
          const f = l.split(',');
          return `${f[1]}/${f[10]}`;
        })
        .sort();
    };
    const established = async (): Promise<string[]> => (await listed()).map((row) => row.split('/')[0] as string);
    await waitUntil(
      'both clients listed',
      () => op.lines.filter((l) => /^>CLIENT:ESTABLISHED,\d+$/.test(l)).length >= 2,
      5000,
      () => op.lines.join('\n'),
    );
    assert.deepEqual(await established(), ['client', 'revoked']);
    // The cid of the victim: the CONNECT whose env names common_name=revoked.
    const victimConnect = op.lines.findIndex(
      (l, i) =>
        /^>CLIENT:CONNECT,\d+,\d+$/.test(l) &&
        op.lines.slice(i + 1).find((e) => e.startsWith('>CLIENT:ENV,common_name=')) === '>CLIENT:ENV,common_name=revoked',
    );
    assert.ok(victimConnect >= 0, op.lines.join('\n'));
    const victimCid = (op.lines[victimConnect] as string).split(',')[1] as string;
    const keptRow = (await listed()).find((row) => row.startsWith('client/')) as string;

    // 20 pings over 4 s from the kept client, the kill and the half-sent command in the middle.
    // A deadline, so a late reply still counts; loss shows as a missing icmp_seq below.
    const pinger = lab.spawn(lab.clients[0]!, 'ping', ['-c', '20', '-i', '0.2', '-w', '15', '10.156.0.1'], 'ping');
    // 'close', not 'exit': by then the whole output has been read (attached at once after the spawn).
    const pingDone = new Promise<void>((resolve) => pinger.child.once('close', () => resolve()));
    await sleep(1000);
    const killFrom = op.lines.length;
    assert.deepEqual(await op.command('kill revoked'), ["SUCCESS: common name 'revoked' found, 1 client(s) killed"]);
    await op.waitLine(new RegExp(`^>CLIENT:DISCONNECT,${victimCid}$`), killFrom, 3000);
    // The victim may ping-restart (whole-second timers) and be back already, but only with a new cid.
    const afterKill = await listed();
    assert.ok(afterKill.includes(keptRow), `${keptRow} in ${afterKill.join(' ')}`);
    assert.ok(!afterKill.includes(`revoked/${victimCid}`), afterKill.join(' '));
    halfSender.write('kill client');
    await sleep(200);
    halfSender.close();
    await sleep(300);
    const afterHalf = await listed();
    assert.ok(afterHalf.includes(keptRow), `the half-sent kill did nothing: ${keptRow} in ${afterHalf.join(' ')}`);
    assert.ok(
      op.lines.slice(killFrom).every((l) => !l.startsWith('ERROR')),
      op.lines.slice(killFrom).join('\n'),
    );

    await pingDone;
    // Every probe 1..20 answered: no packet lost across the kill.
    const seen = new Set([...pinger.log().matchAll(/icmp_seq=(\d+) /g)].map((m) => Number(m[1])));
    const lost = Array.from({ length: 20 }, (_, i) => i + 1).filter((seq) => !seen.has(seq));
    assert.deepEqual(lost, [], pinger.log());
    // The victim noticed only through its ping-restart; the kept client never restarted.
    await victim.waitFor(/Inactivity timeout \(--ping-restart\), restarting/, 8000);
    assert.doesNotMatch(kept.log(), /Inactivity timeout|process restarting/, kept.log().slice(-2000));
    // The kept client is still its first session. The victim, restarted, may already be back:
    // if so, only as a new client id.
    const after = await listed();
    assert.ok(after.includes(keptRow), `${keptRow} in ${after.join(' ')}`);
    assert.ok(!after.includes(`revoked/${victimCid}`), after.join(' '));
    assert.doesNotMatch(server.log(), /client\/10\.150\.0\.10:\d+ disconnected/);
    assert.match(server.log(), /revoked\/10\.150\.0\.11:\d+ disconnected/);
  } finally {
    for (const m of operator) m.close();
    await lab.cleanup();
  }
});

// management-client-auth, as SSO and admin front ends use it: each new client waits after
// >CLIENT:CONNECT until the management client answers; client-auth's config block is applied
// like client-connect output, client-deny sends AUTH_FAILED with the client reason. Its clients
// show only a certificate, so the server has auth-user-pass-optional, as such front ends write it
// (without it OpenVPN refuses a client that sends no username/password before asking anyone).
test(
  'management-client-auth: client-auth admits with its config block, client-deny refuses with a reason',
  { timeout: 60_000 },
  async () => {
    const lab = VpnLab.create(2);
    const socketPath = path.join(lab.dir, 'management-auth.sock');
    try {
      const server = await lab.startShardvpn(
        `port 1194\nproto udp\ndev tun\ntopology subnet\nserver 10.162.0.0 255.255.255.0\nkeepalive 10 60\n${lab.serverTlsLines()}` +
          `management ${socketPath} unix\nmanagement-client-auth\nauth-user-pass-optional\nverb 3\n`,
        'server-client-auth.conf',
      );
      await server.waitFor(/MANAGEMENT: unix domain socket listening on /, 5000);
      const operator = new ManagementClient(socketPath);
      try {
        await operator.waitLine(/^>INFO:OpenVPN Management Interface Version 5/);
        const base = `client\ndev tun\nproto udp\nremote ${SERVER_UNDERLAY} 1194\nnobind\nca ${lab.pki.files.ca}\nremote-cert-tls server\nverb 3\n`;

        const admitted = await lab.startOpenvpnClient(0, `${base}cert ${lab.pki.files.clientCert}\nkey ${lab.pki.files.clientKey}\n`, null);
        const connect = operator.lines[await operator.waitLine(/^>CLIENT:CONNECT,\d+,\d+$/, 0, 15_000)]!.split(',');
        await sleep(1500);
        assert.doesNotMatch(admitted.log(), /Initialization Sequence Completed/, 'the client waits for the verdict');
        // Single sign-on style: the client is told to wait longer and shown where to log in.
        assert.deepEqual(
          await operator.command(`client-pending-auth ${connect[1]} ${connect[2]} "WEB_AUTH::https://sso.example.invalid/login" 45`),
          ['SUCCESS: client-pending-auth command succeeded'],
        );
        await admitted.waitFor(/AUTH_PENDING received, extending handshake timeout from 60s to 45s/, 10_000);
        const from = operator.lines.length;
        operator.write(`client-auth ${connect[1]} ${connect[2]}\npush "route 10.163.0.0 255.255.255.0"\nEND\n`);
        await operator.waitLine(/^SUCCESS: client-auth command succeeded$/, from);
        await admitted.waitFor(/Initialization Sequence Completed/, 15_000);
        assert.match(lab.clients[0]!.exec('ip', ['route']), /10\.163\.0\.0\/24 via 10\.162\.0\.1/);
        assert.equal(lab.ping(lab.clients[0]!, '10.162.0.1'), 3);
        assert.deepEqual(
          await operator.command(`client-auth-nt ${connect[1]} ${connect[2]}`),
          ['ERROR: client-auth command failed'],
          'no longer waiting',
        );

        const refused = await lab.startOpenvpnClient(
          1,
          `${base}cert ${lab.file('revoked.crt', lab.pki.revokedClientCert)}\nkey ${lab.file('revoked.key', lab.pki.revokedClientKey)}\n`,
          null,
        );
        const second =
          operator.lines[await operator.waitLine(new RegExp(`^>CLIENT:CONNECT,(?!${connect[1]},)\\d+,\\d+$`), 0, 15_000)]!.split(',');
        assert.deepEqual(await operator.command(`client-deny ${second[1]} ${second[2]} "not today" "go away"`), [
          'SUCCESS: client-deny command succeeded',
        ]);
        await refused.waitFor(/AUTH_FAILED,go away/, 15_000);
        await server.waitFor(/MANAGEMENT: client-deny: not today/, 5000);
        await refused.stop();
        await admitted.stop();
      } finally {
        operator.close();
      }
      assert.equal(await server.stop(), 0, server.log().slice(-2000));
    } finally {
      await lab.cleanup();
    }
  },
);

// Status file (multi_print_status) versions 1, 2 and 3: golden lines, the writer, and
// parity with the status files of a real OpenVPN 2.6 server.
process.env.TZ = 'UTC'; // before any Date use; spawned openvpn inherits it too
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StatusFileWriter, formatRealAddress, renderStatus, statusText } from '../src/main/ops/status';
import { timeString } from '../src/shared/log';
import { FakeServerView, TITLE, client } from './helpers/fake-server-view';
import { startRealServers } from './helpers/real-openvpn-server';

const NOW = 1_700_000_200; // 2023-11-14 22:16:40 UTC

function twoClients(): FakeServerView {
  return new FakeServerView([
    client({
      cid: 0,
      peerId: 0,
      commonName: 'alice',
      virtualAddress: '10.8.0.2',
      virtualAddressIpv6: 'fd00:0:0:0::1000',
      bytesReceived: 1937,
      bytesSent: 2007,
      iroutes: ['10.200.0.0/24', 'fd99:0::/64'],
    }),
    client({
      cid: 7,
      peerId: 1,
      commonName: null,
      username: 'bob',
      realAddress: { family: 6, address: '2001:DB8::5', port: 5000 },
      virtualAddress: '10.8.0.3',
      bytesReceived: 100,
      bytesSent: 200,
      connectedSince: 1_700_000_060,
      lastRef: 1_700_000_190,
      cipher: 'CHACHA20-POLY1305',
    }),
  ]);
}

test('timeString is local time YYYY-MM-DD HH:MM:SS', () => {
  assert.equal(timeString(NOW), '2023-11-14 22:16:40');
  assert.equal(timeString(0), '1970-01-01 00:00:00');
  process.env.TZ = 'Asia/Kolkata'; // +05:30, no DST
  try {
    assert.equal(timeString(NOW), '2023-11-15 03:46:40');
  } finally {
    process.env.TZ = 'UTC';
  }
});

test('real addresses print as OpenVPN prints them (mroute_addr_print)', () => {
  assert.equal(formatRealAddress({ family: 4, address: '192.0.2.1', port: 1194 }), '192.0.2.1:1194');
  assert.equal(formatRealAddress({ family: 6, address: '::ffff:192.0.2.1', port: 1194 }), '192.0.2.1:1194');
  assert.equal(formatRealAddress({ family: 6, address: '2001:db8:0:0:0:0:0:1', port: 1194 }), '2001:db8::1');
});

test('status version 1: golden lines', () => {
  assert.deepEqual(renderStatus(twoClients(), 1, NOW), [
    'OpenVPN CLIENT LIST',
    'Updated,2023-11-14 22:16:40',
    'Common Name,Real Address,Bytes Received,Bytes Sent,Connected Since',
    'alice,198.51.100.7:51820,1937,2007,2023-11-14 22:13:20',
    'UNDEF,2001:db8::5,100,200,2023-11-14 22:14:20',
    'ROUTING TABLE',
    'Virtual Address,Common Name,Real Address,Last Ref',
    '10.8.0.2,alice,198.51.100.7:51820,2023-11-14 22:15:00',
    'fd00::1000,alice,198.51.100.7:51820,2023-11-14 22:15:00',
    '10.200.0.0/24,alice,198.51.100.7:51820,2023-11-14 22:15:00',
    'fd99::/64,alice,198.51.100.7:51820,2023-11-14 22:15:00',
    '10.8.0.3,UNDEF,2001:db8::5,2023-11-14 22:16:30',
    'GLOBAL STATS',
    'Max bcast/mcast queue length,0',
    'END',
  ]);
});

const V2 = [
  `TITLE,${TITLE}`,
  'TIME,2023-11-14 22:16:40,1700000200',
  'HEADER,CLIENT_LIST,Common Name,Real Address,Virtual Address,Virtual IPv6 Address,Bytes Received,Bytes Sent,Connected Since,Connected Since (time_t),Username,Client ID,Peer ID,Data Channel Cipher',
  'CLIENT_LIST,alice,198.51.100.7:51820,10.8.0.2,fd00::1000,1937,2007,2023-11-14 22:13:20,1700000000,UNDEF,0,0,AES-256-GCM',
  'CLIENT_LIST,UNDEF,2001:db8::5,10.8.0.3,,100,200,2023-11-14 22:14:20,1700000060,bob,7,1,CHACHA20-POLY1305',
  'HEADER,ROUTING_TABLE,Virtual Address,Common Name,Real Address,Last Ref,Last Ref (time_t)',
  'ROUTING_TABLE,10.8.0.2,alice,198.51.100.7:51820,2023-11-14 22:15:00,1700000100',
  'ROUTING_TABLE,fd00::1000,alice,198.51.100.7:51820,2023-11-14 22:15:00,1700000100',
  'ROUTING_TABLE,10.200.0.0/24,alice,198.51.100.7:51820,2023-11-14 22:15:00,1700000100',
  'ROUTING_TABLE,fd99::/64,alice,198.51.100.7:51820,2023-11-14 22:15:00,1700000100',
  'ROUTING_TABLE,10.8.0.3,UNDEF,2001:db8::5,2023-11-14 22:16:30,1700000190',
  'GLOBAL_STATS,Max bcast/mcast queue length,0',
  'GLOBAL_STATS,dco_enabled,0',
  'END',
];

test('status version 2: golden lines', () => {
  assert.deepEqual(renderStatus(twoClients(), 2, NOW), V2);
});

test('status version 3: the same columns separated by TAB (the title keeps its spaces)', () => {
  const v3 = renderStatus(twoClients(), 3, NOW);
  assert.deepEqual(
    v3,
    V2.map((line) => (line.startsWith('TITLE,') ? `TITLE\t${TITLE}` : line.replaceAll(',', '\t'))),
  );
  assert.equal(v3[1], 'TIME\t2023-11-14 22:16:40\t1700000200');
});

test('no clients; absent addresses print empty; \\n for the file, \\r\\n for management', () => {
  const empty = new FakeServerView([]);
  assert.equal(
    statusText(empty, 1, NOW, '\n'),
    'OpenVPN CLIENT LIST\nUpdated,2023-11-14 22:16:40\nCommon Name,Real Address,Bytes Received,Bytes Sent,Connected Since\n' +
      'ROUTING TABLE\nVirtual Address,Common Name,Real Address,Last Ref\nGLOBAL STATS\nMax bcast/mcast queue length,0\nEND\n',
  );
  assert.ok(statusText(empty, 2, NOW, '\r\n').endsWith('GLOBAL_STATS,dco_enabled,0\r\nEND\r\n'));
  const noAddr = new FakeServerView([client({ cid: 3, virtualAddress: null, commonName: '' })]);
  const lines = renderStatus(noAddr, 2, NOW);
  assert.equal(lines[3], 'CLIENT_LIST,UNDEF,198.51.100.7:51820,,,0,0,2023-11-14 22:13:20,1700000000,UNDEF,3,3,AES-256-GCM');
  assert.ok(!lines.some((l) => l.startsWith('ROUTING_TABLE,')), 'a client without addresses has no routes');
});

test('StatusFileWriter rewrites one file in place, on a timer, and reports errors without throwing', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'shardvpn-status-'));
  try {
    const view = twoClients();
    view.statusVersion = 2;
    const path = join(dir, 'status.log');
    let clockMs = NOW * 1000;
    const errors: string[] = [];
    const writer = new StatusFileWriter({
      path,
      source: view,
      version: 2,
      intervalSeconds: 0.05,
      clock: () => clockMs,
      logger: (m) => errors.push(m),
    });
    writer.writeNow();
    const full = V2.join('\n') + '\n';
    assert.equal(readFileSync(path, 'utf8'), full);
    assert.deepEqual(readdirSync(dir), ['status.log'], 'no temporary file left behind');
    const inode = statSync(path).ino;
    // The timer rewrites the file with the current data: a shorter report, cut to its length,
    // in the same file (the descriptor a server keeps after dropping root).
    view.list = [];
    clockMs += 60_000;
    writer.start();
    const deadline = Date.now() + 3000;
    while (!readFileSync(path, 'utf8').includes('TIME,2023-11-14 22:17:40') && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    writer.stop();
    const shorter = statusText(view, 2, NOW + 60, '\n');
    assert.ok(shorter.length < full.length);
    assert.equal(readFileSync(path, 'utf8'), shorter);
    assert.equal(statSync(path).ino, inode, 'rewritten in place');
    assert.equal(errors.length, 0, errors.join('\n'));

    const bad = new StatusFileWriter({ path: join(dir, 'missing-dir', 'status'), source: view, logger: (m) => errors.push(m) });
    bad.writeNow(); // does not throw
    assert.equal(errors.length, 1);
    assert.match(errors[0] as string, /^status .*missing-dir\/status: cannot open for writing: ENOENT/);
    bad.writeNow();
    assert.equal(errors.length, 1, 'a file that cannot be opened is said once');
    assert.throws(() => new StatusFileWriter({ path, source: view, intervalSeconds: 0 }), /positive number of seconds/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---- parity with a real OpenVPN 2.6 server ----

const TIME = String.raw`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d`;
const UNIX = String.raw`\d{9,10}`;
const V4_PORT = String.raw`\d+\.\d+\.\d+\.\d+:\d+`;
const ROUTE = String.raw`(?:\d+\.\d+\.\d+\.\d+(?:/\d+)?|[0-9a-f:]+(?:/\d+)?)C?`;
/** Field formats of each row kind, column by column (v2/v3). */
const FORMATS: Record<string, readonly string[]> = {
  TIME: ['TIME', TIME, UNIX],
  CLIENT_LIST: [
    'CLIENT_LIST',
    '[^,\t]+',
    V4_PORT,
    String.raw`\d+\.\d+\.\d+\.\d+`,
    '[0-9a-f:]+',
    String.raw`\d+`,
    String.raw`\d+`,
    TIME,
    UNIX,
    'UNDEF|[^,\t]+',
    String.raw`\d+`,
    String.raw`\d+`,
    '[A-Z0-9-]+',
  ],
  ROUTING_TABLE: ['ROUTING_TABLE', ROUTE, '[^,\t]+', V4_PORT, TIME, UNIX],
  GLOBAL_STATS: ['GLOBAL_STATS', '[^,\t]+', String.raw`\d+`],
};

function parseTime(text: string): number {
  const m = /^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)$/.exec(text);
  assert.ok(m, `time ${text}`);
  return Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!) / 1000;
}

/** A view holding the real server's one client, rebuilt from its own status file. */
function viewFromReal(lines: readonly string[], version: 1 | 2 | 3): FakeServerView {
  const sep = version === 3 ? '\t' : ',';
  if (version === 1) {
    const [cn, real, rx, tx, since] = (lines[3] as string).split(',') as [string, string, string, string, string];
    const routeRows = lines.slice(lines.indexOf('ROUTING TABLE') + 2, lines.indexOf('GLOBAL STATS')).map((l) => l.split(','));
    const routes = routeRows.map((r) => r[0] as string);
    const [host, port] = real.split(':');
    return new FakeServerView([
      client({
        cid: 0,
        commonName: cn,
        realAddress: { family: 4, address: host as string, port: Number(port) },
        virtualAddress: routes.find((r) => !r.includes('/') && r.includes('.')) ?? null,
        virtualAddressIpv6: routes.find((r) => !r.includes('/') && r.includes(':')) ?? null,
        bytesReceived: Number(rx),
        bytesSent: Number(tx),
        connectedSince: parseTime(since),
        lastRef: parseTime(routeRows[0]![3]!),
        iroutes: routes.filter((r) => r.includes('/')),
      }),
    ]);
  }
  const row = (lines.find((l) => l.startsWith('CLIENT_LIST')) as string).split(sep);
  const routeRows = lines.filter((l) => l.startsWith('ROUTING_TABLE')).map((l) => l.split(sep));
  const [host, port] = (row[2] as string).split(':');
  return new FakeServerView([
    {
      cid: Number(row[10]),
      peerId: Number(row[11]),
      shard: 0,
      commonName: row[1] as string,
      username: row[9] === 'UNDEF' ? null : (row[9] as string),
      realAddress: { family: 4, address: host as string, port: Number(port) },
      virtualAddress: row[3] as string,
      virtualAddressIpv6: row[4] as string,
      bytesReceived: Number(row[5]),
      bytesSent: Number(row[6]),
      connectedSince: Number(row[8]),
      lastRef: Number(routeRows[0]![5]),
      cipher: row[12] as string,
      iroutes: routeRows.map((r) => r[1] as string).filter((r) => r.includes('/')),
    },
  ]);
}

const kinds = (lines: readonly string[], sep: string): string[] =>
  lines.map((l) => (l.startsWith('HEADER') ? l : (l.split(sep)[0] as string)));

test('parity with real OpenVPN 2.6 status files, versions 1, 2 and 3', { timeout: 45_000 }, async () => {
  const real = await startRealServers([1, 2, 3]);
  try {
    for (const [i, server] of real.servers.entries()) {
      const version = server.version;
      const text = readFileSync(server.statusFile, 'utf8');
      assert.ok(text.endsWith('\nEND\n'), 'the file ends with END and \\n');
      const theirs = text.split('\n').slice(0, -1);
      const view = viewFromReal(theirs, version);
      if (version === 1) {
        const ours = renderStatus(view, 1, parseTime(theirs[1]!.slice('Updated,'.length)));
        const fixed = (lines: string[]): string[] =>
          lines.filter((l) => !/^[^,]+,[^,]+,/.test(l) || l.startsWith('Common Name,') || l.startsWith('Virtual Address,'));
        assert.deepEqual(fixed(ours), fixed(theirs), 'v1: same section lines and headers');
        assert.equal(ours.length, theirs.length, 'v1: same number of lines');
        assert.match(theirs[1]!, new RegExp(`^Updated,${TIME}$`));
        const v1Client = new RegExp(`^[^,]+,${V4_PORT},\\d+,\\d+,${TIME}$`);
        const v1Route = new RegExp(`^${ROUTE},[^,]+,${V4_PORT},${TIME}$`);
        for (const lines of [theirs, ours]) {
          const clientRows = lines.slice(3, lines.indexOf('ROUTING TABLE'));
          const routeRows = lines.slice(lines.indexOf('ROUTING TABLE') + 2, lines.indexOf('GLOBAL STATS'));
          assert.equal(clientRows.length, 1);
          assert.deepEqual(routeRows.map((r) => r.split(',')[0]).sort(), ['10.200.0.0/24', `10.7${i}.0.2`, `fd7${i}::1000`, 'fd99::/64']);
          for (const l of clientRows) assert.match(l, v1Client);
          for (const l of routeRows) assert.match(l, v1Route);
          assert.match(lines.at(-2)!, /^Max bcast\/mcast queue length,\d+$/);
        }
        assert.equal(ours[3], theirs[3], 'v1: the same client row from the same data');
        continue;
      }
      const sep = version === 3 ? '\t' : ',';
      const ours = renderStatus(view, version, Number(theirs[1]!.split(sep)[2]));
      assert.deepEqual(kinds(ours, sep), kinds(theirs, sep), `v${version}: same line kinds in the same order, same headers`);
      for (const lines of [theirs, ours]) {
        for (const line of lines) {
          const fields = line.split(sep);
          const format = FORMATS[fields[0] as string];
          if (format === undefined) continue;
          assert.equal(fields.length, format.length, `v${version} column count: ${line}`);
          fields.forEach((f, c) => assert.match(f, new RegExp(`^(?:${format[c]})$`), `v${version} column ${c} of ${JSON.stringify(line)}`));
        }
      }
      assert.match(theirs[0]!, new RegExp(`^TITLE${sep}OpenVPN 2\\.6`));
      // Same data, same text: the client row exactly, the TIME row, routes up to Last Ref (each
      // route has its own in OpenVPN), the dco line.
      assert.equal(ours[1], theirs[1]);
      assert.deepEqual(
        ours.filter((l) => l.startsWith('CLIENT_LIST')),
        theirs.filter((l) => l.startsWith('CLIENT_LIST')),
      );
      const routeKey = (l: string): string => l.split(sep).slice(0, 4).join(sep);
      const routesOf = (lines: string[]): string[] =>
        lines
          .filter((l) => l.startsWith('ROUTING_TABLE'))
          .map(routeKey)
          .sort();
      assert.deepEqual(routesOf(ours), routesOf(theirs));
      assert.equal(routesOf(theirs).length, 4, 'v4, v6 and both iroutes');
      assert.equal(ours.at(-2), theirs.at(-2));
    }
  } finally {
    real.cleanup();
  }
});

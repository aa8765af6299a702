// The decisions of a hitless SIGHUP without a server: which edits a running server takes in
// place and which need OpenVPN's restart (reload-plan.ts), which connected clients a new CRL
// revokes (crl-check.ts), and the lifecycle's SIGHUP path: applied in place, refused with the
// running config kept, or handed to a restart.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';

import { makeTestPki } from '../lab/test-pki';
import { buildOptions, parseConfigText, type Options } from '../src/shared/config';
import { runLifecycle, type Running } from '../src/main/lifecycle';
import { revocationCheck } from '../src/main/server/crl-check';
import { fingerprintOptions, planReload } from '../src/main/server/reload-plan';
import { Logger } from '../src/shared/log';

const dir = mkdtempSync(path.join(os.tmpdir(), 'shardvpn-reload-'));
const pki = makeTestPki();
after(() => {
  rmSync(dir, { recursive: true, force: true });
  pki.cleanup();
});

const BASE = [
  'port 1194',
  'proto udp',
  'dev tun',
  'server 10.9.0.0 255.255.255.0',
  `tls-crypt ${path.join(dir, 'tc.key')}`,
  'keepalive 10 60',
  'push "route 10.1.0.0 255.255.0.0"',
  'verb 3',
];

function options(lines: string[]): Options {
  return buildOptions(parseConfigText(lines.join('\n'), path.join(dir, 'server.conf'))).options;
}

writeFileSync(path.join(dir, 'tc.key'), 'first key\n');

test('comments, blank lines and moved directives change nothing', () => {
  const moved = ['# edited', '', ...BASE.slice(4), ...BASE.slice(0, 4)];
  assert.deepEqual(planReload(fingerprintOptions(options(BASE)), fingerprintOptions(options(moved))), { restartFor: [], applied: [] });
});

test('push, keepalive, data-ciphers and verb are taken in place', () => {
  const next = [...BASE.filter((l) => !l.startsWith('keepalive') && !l.startsWith('verb')), 'keepalive 5 30', 'verb 4'];
  next.push('push "dhcp-option DNS 10.9.0.1"', 'data-ciphers AES-128-GCM');
  const plan = planReload(fingerprintOptions(options(BASE)), fingerprintOptions(options(next)));
  assert.deepEqual(plan.restartFor, []);
  for (const name of ['push', 'keepalive', 'ping', 'ping-rec-timeout', 'verb', 'data-ciphers'])
    assert.ok(plan.applied.includes(name), `${name}: ${plan.applied.join(', ')}`);
});

test('the port, the pool and the tun MTU need a restart, named as directives', () => {
  const next = BASE.map((l) => (l === 'port 1194' ? 'port 1195' : l.startsWith('server ') ? 'server 10.8.0.0 255.255.255.0' : l));
  next.push('tun-mtu 1400');
  const plan = planReload(fingerprintOptions(options(BASE)), fingerprintOptions(options(next)));
  for (const name of ['local-port', 'ifconfig-pool', 'tun-mtu'])
    assert.ok(plan.restartFor.includes(name), `${name}: ${plan.restartFor.join(', ')}`);
  assert.ok(!plan.restartFor.some((name) => name.endsWith('-defined') || name === 'connections'), plan.restartFor.join(', '));
});

test('a key file rewritten at the same path counts as a change', () => {
  const running = fingerprintOptions(options(BASE));
  assert.deepEqual(planReload(running, fingerprintOptions(options(BASE))).restartFor, []);
  writeFileSync(path.join(dir, 'tc.key'), 'second key\n');
  assert.deepEqual(planReload(running, fingerprintOptions(options(BASE))).restartFor, ['tls-crypt']);
});

test('a file the process can no longer read (after dropping root) counts as unchanged', () => {
  const gone = path.join(dir, 'gone.key');
  writeFileSync(gone, 'a key\n');
  const lines = BASE.map((l) => (l.startsWith('tls-crypt') ? `tls-crypt ${gone}` : l));
  const running = fingerprintOptions(options(lines));
  rmSync(gone);
  assert.deepEqual(planReload(running, fingerprintOptions(options(lines), running)).restartFor, []);
  assert.deepEqual(planReload(running, fingerprintOptions(options(lines))).restartFor, ['tls-crypt'], 'without the running digests');
});

test('a new CRL revokes the connected serials it lists, in any spelling, and no others', () => {
  const revokedSerial = new X509Certificate(pki.revokedClientCert).serialNumber;
  const clientSerial = new X509Certificate(pki.clientCert).serialNumber;
  const check = revocationCheck({ ca: pki.caCert, crl: pki.crl } as Parameters<typeof revocationCheck>[0]);
  assert.match(check(revokedSerial) ?? '', /is revoked \(crl-verify\)/);
  assert.match(check(`00${revokedSerial.toLowerCase()}`) ?? '', /is revoked/);
  assert.equal(check(clientSerial), null);
  const empty = revocationCheck({ ca: pki.caCert, crl: pki.emptyCrl } as Parameters<typeof revocationCheck>[0]);
  assert.equal(empty(revokedSerial), null);
  const crlDir = mkdtempSync(path.join(dir, 'crl-'));
  writeFileSync(path.join(crlDir, BigInt(`0x${revokedSerial}`).toString(10)), '');
  const byDir = revocationCheck({ ca: pki.caCert, crlDir } as Parameters<typeof revocationCheck>[0]);
  assert.match(byDir(revokedSerial) ?? '', /revoked \(crl-verify .* dir\)/);
  assert.equal(byDir(clientSerial), null);
  assert.throws(() =>
    revocationCheck({ ca: pki.caCert, crl: '-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n' } as Parameters<
      typeof revocationCheck
    >[0]),
  );
});

/**
 * Runs the lifecycle over a fake server: its first run gets a SIGHUP, then a SIGTERM; `loads`
 * are what loadOptions returns, in turn.
 */
async function lifecycle(
  loads: (() => Options)[],
  reload: Running['reload'],
): Promise<{ starts: number; stops: number; reloads: Options[]; log: string }> {
  let log = '';
  const logger = new Logger(3, (line) => {
    log += `${line}\n`;
  });
  let starts = 0;
  let stops = 0;
  const reloads: Options[] = [];
  let loaded = 0;
  await runLifecycle({
    logger,
    loadOptions: () => loads[Math.min(loaded++, loads.length - 1)]!(),
    notifyOn: () => false,
    start: async (_options, raise) => {
      starts++;
      // Both queued at once: the SIGTERM is taken by whichever run follows the SIGHUP.
      if (starts === 1)
        setImmediate(() => {
          raise('SIGHUP');
          raise('SIGTERM');
        });
      return {
        logStatistics: () => undefined,
        stop: async () => {
          stops++;
        },
        ...(reload !== undefined
          ? {
              reload: (o: Options) => {
                reloads.push(o);
                return reload(o);
              },
            }
          : {}),
      };
    },
  });
  return { starts, stops, reloads, log };
}

test('lifecycle: a hitless SIGHUP applies the new options without a stop', async () => {
  const first = options(BASE);
  const second = options([...BASE, 'verb 4']);
  const run = await lifecycle([() => first, () => second], () => ({ applied: true }));
  assert.deepEqual([run.starts, run.stops], [1, 1], run.log);
  assert.equal(run.reloads[0], second);
  assert.match(run.log, /SIGHUP\[hard,\] received, reloading the configuration/);
});

test('lifecycle: a SIGHUP whose config does not parse keeps the running one', async () => {
  const first = options(BASE);
  const run = await lifecycle(
    [
      () => first,
      () => {
        throw new Error('server.conf:3: keepalive: bad number');
      },
    ],
    () => ({ applied: true }),
  );
  assert.deepEqual([run.starts, run.stops, run.reloads.length], [1, 1, 0], run.log);
  assert.match(run.log, /the new configuration is refused, the running one stays: server\.conf:3: keepalive/);
});

test('lifecycle: a change that needs a restart, and reload-mode restart, restart with the new options', async () => {
  const first = options(BASE);
  const needs = await lifecycle([() => first, () => options([...BASE, 'tun-mtu 1400'])], () => ({
    applied: false,
    restartFor: ['tun-mtu'],
  }));
  assert.deepEqual([needs.starts, needs.stops], [2, 2], needs.log);
  assert.match(needs.log, /SIGHUP: tun-mtu changed, which needs a restart/);
  const openvpnWay = await lifecycle([() => first, () => options([...BASE, 'reload-mode restart'])], () => ({ applied: true }));
  assert.deepEqual([openvpnWay.starts, openvpnWay.stops, openvpnWay.reloads.length], [2, 2, 0], openvpnWay.log);
  assert.match(openvpnWay.log, /SIGHUP\[hard,\] received, process restarting/);
});

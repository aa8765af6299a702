// The systemd units in deploy/systemd: systemd's own checker accepts them (and is shown to catch a
// misspelt directive), they say what the design requires (capabilities, restart, reload, config
// location), and what they say works: the unit's ExecStart, run from its WorkingDirectory inside
// exactly its capability bounding set, starts a real server and a real client, its ExecReload
// reloads the server's config and reconnects the client, and SIGTERM stops them with status 0 (so Restart=on-failure leaves them stopped).
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { BIN, SERVER_UNDERLAY, VpnLab, type LabProcess } from '../lab/vpn-lab';
import { readUnitFile, unitValue, unitValues, type UnitFile } from './helpers/unit-file';

const ROOT = path.join(__dirname, '..', '..');
const UNITS = path.join(ROOT, 'deploy', 'systemd');
const ROLES = {
  server: {
    file: path.join(UNITS, 'shardvpn-server@.service'),
    // TUN and `ip`; a `port` below 1024; `user`/`group`.
    capabilities: ['CAP_NET_ADMIN', 'CAP_NET_BIND_SERVICE', 'CAP_SETGID', 'CAP_SETUID'],
  },
  client: {
    file: path.join(UNITS, 'shardvpn-client@.service'),
    capabilities: ['CAP_NET_ADMIN', 'CAP_SETGID', 'CAP_SETUID'],
  },
} as const;
type Role = keyof typeof ROLES;

/** The capability names of this kernel and util-linux, in bit order (setpriv lists them so). */
const KNOWN_CAPS = execFileSync('setpriv', ['--list-caps'], { encoding: 'utf8' })
  .trim()
  .split('\n')
  .map((name) => `CAP_${name.toUpperCase()}`);

const tempDir = (prefix: string): string => mkdtempSync(path.join(os.tmpdir(), `shardvpn-deploy-${prefix}-`));

/**
 * `systemd-analyze verify` on `text` saved as the instance `name` (e.g. shardvpn-server@server.service),
 * with ExecStart's program pointed at this checkout's bin/shardvpn.js (verify insists that the
 * program exists). Returns what systemd said about the unit: nothing for a clean unit. systemd
 * accepts a misspelt directive with exit status 0 and a warning naming the file, so the warnings
 * count, not only the status.
 */
function verifyComplaints(text: string, name: string): string[] {
  const dir = tempDir('verify');
  try {
    const file = path.join(dir, name);
    writeFileSync(file, text.replace(/^ExecStart=\S+/m, `ExecStart=${BIN}`));
    const result = spawnSync('systemd-analyze', ['verify', '--man=no', file], { encoding: 'utf8', timeout: 60_000 });
    if (result.error !== undefined) throw result.error;
    const complaints = `${result.stdout}${result.stderr}`.split('\n').filter((line) => line.includes(name));
    if (result.status !== 0) complaints.push(`exit status ${result.status}`);
    return complaints;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function capabilitySet(unit: UnitFile): string[] {
  return unitValues(unit, 'Service', 'CapabilityBoundingSet')
    .flatMap((value) => value.split(/\s+/))
    .filter((name) => name !== '')
    .sort();
}

/** ExecStart as an argument vector with the instance name in place of %i. */
function execStart(unit: UnitFile, instance: string): string[] {
  return unitValue(unit, 'Service', 'ExecStart')
    .split(/\s+/)
    .map((word) => word.replaceAll('%i', instance));
}

/** `setpriv` arguments that leave exactly `caps` in the bounding set, as CapabilityBoundingSet does. */
function boundingSet(caps: readonly string[]): string {
  return `--bounding-set=-all,${caps.map((c) => `+${c.slice(4).toLowerCase()}`).join(',')}`;
}

/** The bounding set of a running process, by name, from /proc/PID/status. */
function processBoundingSet(pid: number): string[] {
  const match = /^CapBnd:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(match !== null);
  const mask = BigInt(`0x${match[1]}`);
  return KNOWN_CAPS.filter((_, bit) => (mask & (1n << BigInt(bit))) !== 0n).sort();
}

/** Runs the unit's ExecReload command line against `pid` ($MAINPID). */
function reload(unit: UnitFile, pid: number): void {
  const [program, ...args] = unitValue(unit, 'Service', 'ExecReload')
    .split(/\s+/)
    .map((word) => word.replace('$MAINPID', String(pid)));
  execFileSync(program as string, args);
}

const count = (text: string, pattern: RegExp): number => text.match(new RegExp(pattern.source, 'g'))?.length ?? 0;
const READY = /Initialization Sequence Completed/;

async function waitForCount(proc: LabProcess, pattern: RegExp, n: number, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (count(proc.log(), pattern) < n) {
    if (proc.exited()) throw new Error(`${proc.name} exited before ${n} x ${pattern}:\n${proc.log().slice(-3000)}`);
    if (Date.now() > deadline)
      throw new Error(`${proc.name}: fewer than ${n} x ${pattern} in ${timeoutMs} ms:\n${proc.log().slice(-3000)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

for (const role of Object.keys(ROLES) as Role[]) {
  const { file, capabilities } = ROLES[role];
  const name = path.basename(file).replace('@.service', `@${role}.service`);

  test(`${role} unit: systemd-analyze verify accepts it, and catches a misspelt directive, value or section`, () => {
    const text = readFileSync(file, 'utf8');
    assert.deepEqual(verifyComplaints(text, name), []);
    const typos: [RegExp, string][] = [
      [/^ProtectHome=/m, 'ProtectHom='],
      [/^Restart=on-failure$/m, 'Restart=on-failur'],
      [/^\[Service\]$/m, '[Servce]'],
    ];
    for (const [pattern, typo] of typos) {
      assert.match(text, pattern);
      assert.notDeepEqual(verifyComplaints(text.replace(pattern, typo), name), [], `verify misses ${typo}`);
    }
  });

  test(`${role} unit: capabilities, restart, reload and the config it runs`, () => {
    const unit = readUnitFile(file);
    const caps = capabilitySet(unit);
    // systemd ignores a capability name it does not know, so a misspelt one would pass verify.
    for (const cap of caps) assert.ok(KNOWN_CAPS.includes(cap), `${cap} is not a capability`);
    assert.deepEqual(caps, [...capabilities].sort());
    assert.equal(unitValue(unit, 'Service', 'Restart'), 'on-failure');
    assert.equal(unitValue(unit, 'Service', 'ExecReload'), '/bin/kill -HUP $MAINPID');
    // The command `npm install -g` installs (package.json's bin), given the instance's config.
    const bin = Object.keys((JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { bin: object }).bin);
    assert.deepEqual(execStart(unit, 'office'), [bin[0], '--config', 'office.conf']);
    assert.equal(unitValue(unit, 'Service', 'WorkingDirectory'), `/etc/shardvpn/${role}`);
    assert.ok(unitValues(unit, 'Service', 'DeviceAllow').includes('/dev/net/tun rw'));
    assert.match(unitValue(unit, 'Service', 'LimitNPROC'), /^\d+$/);
    assert.equal(unitValue(unit, 'Install', 'WantedBy'), 'multi-user.target');
  });
}

/** A WorkingDirectory holding the test PKI under relative names, as /etc/shardvpn/ROLE would. */
function workingDirectory(lab: VpnLab, config: string, instance: string): string {
  const dir = tempDir('etc');
  writeFileSync(path.join(dir, 'ca.crt'), lab.pki.caCert);
  writeFileSync(path.join(dir, 'server.crt'), lab.pki.serverCert);
  writeFileSync(path.join(dir, 'server.key'), lab.pki.serverKey, { mode: 0o600 });
  writeFileSync(path.join(dir, 'client.crt'), lab.pki.clientCert);
  writeFileSync(path.join(dir, 'client.key'), lab.pki.clientKey, { mode: 0o600 });
  copyFileSync(lab.keys.tlsCrypt, path.join(dir, 'tc.key'));
  writeFileSync(path.join(dir, `${instance}.conf`), config);
  return dir;
}

/** Starts the unit's ExecStart (with this checkout's shardvpn) as systemd would: cwd, bounding set. */
function startUnit(lab: VpnLab, ns: VpnLab['server'], unit: UnitFile, caps: readonly string[], instance: string, cwd: string): LabProcess {
  const [, ...args] = execStart(unit, instance);
  return lab.spawn(ns, 'setpriv', [boundingSet(caps), '--', process.execPath, BIN, ...args], `shardvpn ${instance}`, { cwd });
}

const SERVER_CONFIG =
  'port 443\nproto udp\ndev tun\ntopology subnet\nserver 10.154.0.0 255.255.255.0\nworkers 2\nkeepalive 10 60\n' +
  'ca ca.crt\ncert server.crt\nkey server.key\ntls-crypt tc.key\nverb 3\n';

test('server unit: ExecStart serves from WorkingDirectory inside the bounding set; ExecReload reloads the config; SIGTERM exits 0', async (t) => {
  const lab = VpnLab.create(0, 'deploy');
  t.after(() => lab.cleanup());
  const unit = readUnitFile(ROLES.server.file);
  const caps = capabilitySet(unit);

  const cwd = workingDirectory(lab, SERVER_CONFIG, 'server');
  t.after(() => rmSync(cwd, { recursive: true, force: true }));
  const server = startUnit(lab, lab.server, unit, caps, 'server', cwd);
  await server.waitFor(READY);
  assert.deepEqual(processBoundingSet(server.child.pid!), caps);
  // Each thread counts against LimitNPROC once `user` has dropped root.
  const threads = /^Threads:\s*(\d+)$/m.exec(readFileSync(`/proc/${server.child.pid!}/status`, 'utf8'))?.[1];
  t.diagnostic(`threads of a server with workers 2: ${threads}; LimitNPROC ${unitValue(unit, 'Service', 'LimitNPROC')}`);
  // A pushed route added, then systemctl reload: the running server takes it in place.
  writeFileSync(path.join(cwd, 'server.conf'), `${SERVER_CONFIG}push "route 10.99.0.0 255.255.0.0"\n`);
  reload(unit, server.child.pid!);
  await server.waitFor(/SIGHUP: configuration reloaded without a restart \(changed: [^)]*push/);
  assert.equal(await server.stop('SIGTERM'), 0, server.log().slice(-2000));

  // Without CAP_NET_BIND_SERVICE root cannot bind port 443: the capability is there for that.
  const withoutBind = startUnit(
    lab,
    lab.server,
    unit,
    caps.filter((c) => c !== 'CAP_NET_BIND_SERVICE'),
    'server',
    cwd,
  );
  assert.notEqual(await new Promise((resolve) => withoutBind.child.once('exit', resolve)), 0);
  assert.match(withoutBind.log(), /EACCES|permission denied/i);

  // `user`/`group` within the bounding set: root is dropped once the server serves.
  writeFileSync(path.join(cwd, 'dropping.conf'), `${SERVER_CONFIG}user nobody\ngroup nogroup\npersist-key\npersist-tun\n`);
  const dropping = startUnit(lab, lab.server, unit, caps, 'dropping', cwd);
  await dropping.waitFor(READY);
  await dropping.waitFor(/UID set to nobody/);
  assert.equal(await dropping.stop('SIGTERM'), 0, dropping.log().slice(-2000));
});

test('client unit: ExecStart connects to a stock openvpn server inside the bounding set; ExecReload reconnects', async (t) => {
  const lab = VpnLab.create(1, 'deploy');
  t.after(() => lab.cleanup());
  const unit = readUnitFile(ROLES.client.file);
  const caps = capabilitySet(unit);
  const stock = lab.spawn(lab.server, 'openvpn', lab.stockServerArgs('10.155.0.0 255.255.255.0', 1194, ['--verb', '3']), 'openvpn server');
  await stock.waitFor(READY);

  const config =
    `client\ndev tun\nproto udp\nremote ${SERVER_UNDERLAY} 1194\nnobind\nca ca.crt\ncert client.crt\nkey client.key\n` +
    'tls-crypt tc.key\nremote-cert-tls server\nverb 3\n';
  const cwd = workingDirectory(lab, config, 'office');
  t.after(() => rmSync(cwd, { recursive: true, force: true }));
  const client = startUnit(lab, lab.clients[0]!, unit, caps, 'office', cwd);
  await client.waitFor(READY);
  assert.deepEqual(processBoundingSet(client.child.pid!), caps);
  assert.ok(lab.ping(lab.clients[0]!, '10.155.0.1', 3) > 0, 'the tunnel carries traffic');
  reload(unit, client.child.pid!);
  await waitForCount(client, READY, 2);
  assert.ok(lab.ping(lab.clients[0]!, '10.155.0.1', 3) > 0, 'the tunnel carries traffic after the reload');
  assert.equal(await client.stop('SIGTERM'), 0, client.log().slice(-2000));
});

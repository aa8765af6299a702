import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';

import { NetworkNamespace, runNodeIn } from '../lab/netns';

test('TUN device in a namespace: IPv4 and IPv6 packets read and written through the addon', async (t) => {
  const ns = NetworkNamespace.create('tun');
  t.after(() => ns.remove());
  const result = await runNodeIn(ns, path.join(__dirname, 'fixtures', 'tun-probe.js'), ['svtun0']);
  assert.equal(result.code, 0, `probe failed:\n${result.stderr}`);
  const findings = JSON.parse(result.stdout.trim().split('\n').pop() ?? '{}') as Record<string, unknown>;
  assert.equal(findings.name, 'svtun0');
  assert.equal(findings.read4, true);
  assert.equal(findings.write4, true);
  assert.equal(findings.read6, true);
  assert.equal(findings.write6, true);
  assert.equal(findings.writeDrops, 1);
  assert.equal(findings.oversizeRejected, true);
  // The device went away with the process: nothing is left in the namespace.
  assert.doesNotMatch(ns.ip(['-o', 'link', 'show']), /svtun0/);
});

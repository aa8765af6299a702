// TUN offloads (tun-offload) against the kernel's own TCP and UDP, in a namespace: TSO
// superpackets split into checked segments, a batch of segments coalesced into superpackets the
// kernel's socket reads intact, IPv4 and IPv6, UDP GSO runs split from USO superpackets, and the
// same device opened without asking for USO (as on a kernel without it).
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';

import { NetworkNamespace, runNodeIn } from '../lab/netns';

type Counts = Record<string, number>;
interface Findings {
  vnetHeader: boolean;
  tso: boolean;
  uso: boolean;
  tcp4: Counts;
  tcp6: Counts;
  udp4: Counts;
  udp6: Counts;
}

async function probe(name: string, args: string[]): Promise<Findings> {
  const ns = NetworkNamespace.create(name);
  try {
    const result = await runNodeIn(ns, path.join(__dirname, 'fixtures', 'tun-offload-probe.js'), args);
    assert.equal(result.code, 0, `probe failed:\n${result.stderr}`);
    return JSON.parse(result.stdout.trim().split('\n').pop() ?? '{}') as Findings;
  } finally {
    ns.remove();
  }
}

function assertTcpOffloaded(counts: Counts, label: string, v6: boolean): void {
  const all = `${label}: ${JSON.stringify(counts)}`;
  // Five more segments: the first three (PSH on the third) merged; the fourth alone; the fifth,
  // whose IPv4 id jumps (no DF), alone too. IPv6 has no id: the fourth and fifth merge.
  assert.equal(counts.mixedWrites, v6 ? 2 : 1, all);
  assert.equal(counts.mixedPackets, v6 ? 5 : 3, all);
  // The upload came as superpackets, each split into several segments.
  assert.ok(counts.superpackets! > 0 && counts.segments! > counts.superpackets!, all);
  // The download's 46 segments left in few writes.
  assert.ok(counts.coalescedWrites! >= 1 && counts.coalescedPackets! >= 2 * counts.coalescedWrites!, all);
  assert.ok(counts.coalescedPackets! >= 40, all);
  assert.equal(counts.coalesceRefusals, 0, all);
  assert.equal(counts.readDrops, 0, all);
}

test('TUN offloads: TSO split and TCP coalescing against the kernel (IPv4, IPv6); UDP GSO runs split from USO superpackets', async () => {
  const findings = await probe('toff', ['svoff0']);
  assert.equal(findings.vnetHeader, true);
  assert.equal(findings.tso, true);
  assertTcpOffloaded(findings.tcp4, 'IPv4', false);
  assertTcpOffloaded(findings.tcp6, 'IPv6', true);
  for (const [label, udp] of [
    ['IPv4', findings.udp4],
    ['IPv6', findings.udp6],
  ] as const) {
    assert.ok(udp.gsoMessages! >= 1, `${label}: the run left as a GSO message ${JSON.stringify(udp)}`);
    // A kernel with USO hands the run over whole (13 datagrams, one superpacket); one without
    // segments it itself. Either way every datagram arrived intact (checked in the probe).
    if (findings.uso) assert.ok(udp.superpackets! >= 1 && udp.segments! >= 13, `${label}: ${JSON.stringify(udp)}`);
    else assert.equal(udp.superpackets, 0);
  }
});

test('TUN offloads without USO: UDP runs arrive as datagrams the kernel segmented, TCP offloads unchanged', async () => {
  const findings = await probe('tnouso', ['svoff1', 'no-uso']);
  assert.equal(findings.uso, false);
  assert.equal(findings.tso, true);
  assertTcpOffloaded(findings.tcp4, 'IPv4', false);
  assert.equal(findings.udp4.superpackets, 0, JSON.stringify(findings.udp4));
  assert.equal(findings.udp6.superpackets, 0, JSON.stringify(findings.udp6));
});

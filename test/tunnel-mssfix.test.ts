// mssfix on live tunnels: with the stock peer's own clamping turned off (`mssfix 0`), the MSS
// that each end of a TCP connection through the tunnel learned from the other's SYN shows
// whether shardvpn lowered it (1492 - 28 - 24 - 40 = 1400, less 12 for timestamps) or not
// (1460 - 12 on a 1500-byte tunnel), for our server and for our client.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { clientConfig, serverConfig, startOurClient, startStockServer } from './helpers/client-lab';
import { SERVER_UNDERLAY, VpnLab, type LabProcess } from '../lab/vpn-lab';
import type { NetworkNamespace } from '../lab/netns';

let lab: VpnLab;
before(() => {
  lab = VpnLab.create(1);
});
after(async () => {
  await lab.cleanup();
});

const PORT = 5301;
const HOLD = 'setTimeout(() => process.exit(0), 20000);';

/** The `mss:` ss reports for the established TCP connection on PORT in `ns`. */
function mssIn(ns: NetworkNamespace): number {
  const out = ns.exec('ss', ['-tinH', 'state', 'established', `( sport = :${PORT} or dport = :${PORT} )`]);
  const match = /\bmss:(\d+)/.exec(out);
  assert.ok(match !== null, `no established connection on port ${PORT}:\n${out}`);
  return Number(match[1]);
}

/** A TCP connection through the tunnel, client namespace -> `address`:PORT in the server's. */
async function connectThrough(address: string): Promise<{ server: number; client: number }> {
  const listener = lab.spawn(
    lab.server,
    'node',
    ['-e', `require('net').createServer(() => {}).listen(${PORT}, '${address}', () => console.log('listening')); ${HOLD}`],
    'tcp listener',
  );
  let dialer: LabProcess | null = null;
  try {
    await listener.waitFor(/listening/, 10_000);
    dialer = lab.spawn(
      lab.clients[0]!,
      'node',
      ['-e', `require('net').connect(${PORT}, '${address}', () => console.log('connected')); ${HOLD}`],
      'tcp dialer',
    );
    await dialer.waitFor(/connected/, 10_000);
    return { server: mssIn(lab.server), client: mssIn(lab.clients[0]!) };
  } finally {
    await dialer?.stop();
    await listener.stop();
  }
}

function assertClamped(mss: { server: number; client: number }): void {
  // Both SYNs crossed the tunnel: each end's MSS is the limit (less TCP options), not 1448.
  for (const [side, value] of Object.entries(mss)) assert.ok(value <= 1400 && value >= 1300, `${side} side mss ${value}`);
}

test('our server lowers the MSS of SYNs both ways for a stock client that does not (mssfix 0)', async () => {
  const server = await lab.startShardvpn(serverConfig(lab, { net: '10.158.0', extra: 'workers 2\n' }));
  const client = await lab.startOpenvpnClient(
    0,
    `client\ndev tun\nproto udp\nremote ${SERVER_UNDERLAY} 1194\nnobind\n${lab.clientTlsLines()}tls-crypt ${lab.keys.tlsCrypt}\nmssfix 0\nverb 3\n`,
  );
  try {
    assertClamped(await connectThrough('10.158.0.1'));
  } finally {
    await client.stop();
    await server.stop();
  }
});

test('our client lowers the MSS of SYNs both ways against a stock server that does not (mssfix 0)', async () => {
  const server = await startStockServer(lab, serverConfig(lab, { extra: 'mssfix 0\n' }));
  const client = startOurClient(lab, 0, clientConfig(lab));
  try {
    await client.waitFor(/Initialization Sequence Completed/, 15_000);
    assertClamped(await connectThrough('10.152.0.1'));
  } finally {
    await client.stop();
    await server.stop();
  }
});

test('with mssfix 0 at both ends the SYNs keep the MSS of a 1500-byte tunnel', async () => {
  const server = await startStockServer(lab, serverConfig(lab, { extra: 'mssfix 0\n' }));
  const client = startOurClient(lab, 0, clientConfig(lab, { extra: 'mssfix 0\n' }));
  try {
    await client.waitFor(/Initialization Sequence Completed/, 15_000);
    const mss = await connectThrough('10.152.0.1');
    for (const [side, value] of Object.entries(mss)) assert.ok(value > 1400, `${side} side mss ${value}`);
  } finally {
    await client.stop();
    await server.stop();
  }
});

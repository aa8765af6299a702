// A checksummed TCP transfer between two namespaces (through whatever tunnel joins them).
import assert from 'node:assert/strict';
import path from 'node:path';

import type { NetworkNamespace } from './netns';
import type { VpnLab } from './vpn-lab';

const SCRIPT = path.join(__dirname, 'tcp-transfer.js');

export interface TransferResult {
  sent: { bytes: number; sha256: string };
  received: { bytes: number; sha256: string };
}

export async function transfer(
  lab: VpnLab,
  from: NetworkNamespace,
  to: NetworkNamespace,
  address: string,
  bytes: number,
  port = 5201,
): Promise<TransferResult> {
  const server = lab.spawn(to, process.execPath, [SCRIPT, 'serve', address, String(port)], 'transfer receiver');
  await server.waitFor(/listening/, 10_000);
  const sender = lab.spawn(from, process.execPath, [SCRIPT, 'send', address, String(port), String(bytes)], 'transfer sender');
  const sentLine = await sender.waitFor(/\{"bytes".*\}/, 90_000);
  const receivedLine = await server.waitFor(/\{"bytes".*\}/, 30_000);
  return { sent: JSON.parse(sentLine[0]) as TransferResult['sent'], received: JSON.parse(receivedLine[0]) as TransferResult['received'] };
}

/** A transfer that must arrive whole: all `bytes`, with the sender's sha256. */
export async function assertTransferIntact(
  lab: VpnLab,
  from: NetworkNamespace,
  to: NetworkNamespace,
  address: string,
  bytes: number,
  port?: number,
): Promise<TransferResult> {
  const result = await transfer(lab, from, to, address, bytes, port);
  assert.equal(result.received.bytes, bytes);
  assert.equal(result.received.sha256, result.sent.sha256);
  return result;
}

const UDP_ECHO = path.join(__dirname, 'udp-echo.js');

export interface UdpEchoResult {
  sent: number;
  echoed: number;
  corrupt: number;
  resent: number;
  missing: number;
  bytes: number;
}

/**
 * UDP datagrams of each of `sizes`, in bursts of `burst` sent back to back, from `from` to an
 * echo in `to` and back; every echo compared byte for byte (udp-echo.ts). Must come back whole:
 * none corrupt, none missing after the resends.
 */
export async function assertUdpEchoIntact(
  lab: VpnLab,
  from: NetworkNamespace,
  to: NetworkNamespace,
  address: string,
  sizes: readonly number[],
  burst: number,
  rounds: number,
  port = 5301,
): Promise<UdpEchoResult> {
  const echo = lab.spawn(to, process.execPath, [UDP_ECHO, 'echo', address, String(port)], 'udp echo');
  await echo.waitFor(/listening/, 10_000);
  try {
    const sender = lab.spawn(
      from,
      process.execPath,
      [UDP_ECHO, 'send', address, String(port), sizes.join(','), String(burst), String(rounds)],
      'udp echo sender',
    );
    const line = await sender.waitFor(/\{"sent".*\}/, 90_000);
    const result = JSON.parse(line[0]) as UdpEchoResult;
    assert.equal(result.corrupt, 0, `corrupt echoes: ${line[0]}`);
    assert.equal(result.missing, 0, `missing echoes: ${line[0]}`);
    assert.equal(result.echoed, sizes.length * burst * rounds);
    return result;
  } finally {
    await echo.stop('SIGTERM', 2000);
  }
}

// A checksummed TCP transfer held to a rate, so that it lasts long enough for timed events
// (reneg-sec) to happen in its middle. The receiver is tcp-transfer.js's.
import path from 'node:path';

import type { NetworkNamespace } from '../../lab/netns';
import type { VpnLab } from '../../lab/vpn-lab';

const RECEIVER = path.join(__dirname, '..', '..', 'lab', 'tcp-transfer.js');
const SENDER = path.join(__dirname, '..', 'fixtures', 'paced-tcp-send.js');

export interface TransferSide {
  bytes: number;
  sha256: string;
}

export async function pacedTransfer(
  lab: VpnLab,
  from: NetworkNamespace,
  to: NetworkNamespace,
  address: string,
  bytes: number,
  bytesPerSecond: number,
  port = 5202,
): Promise<{ sent: TransferSide; received: TransferSide; ms: number }> {
  const receiver = lab.spawn(to, process.execPath, [RECEIVER, 'serve', address, String(port)], 'paced transfer receiver');
  await receiver.waitFor(/listening/, 10_000);
  const started = Date.now();
  const sender = lab.spawn(
    from,
    process.execPath,
    [SENDER, address, String(port), String(bytes), String(bytesPerSecond)],
    'paced transfer sender',
  );
  const sentLine = await sender.waitFor(/\{"bytes".*\}/, 110_000);
  const receivedLine = await receiver.waitFor(/\{"bytes".*\}/, 30_000);
  return { sent: JSON.parse(sentLine[0]) as TransferSide, received: JSON.parse(receivedLine[0]) as TransferSide, ms: Date.now() - started };
}

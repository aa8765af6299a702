// The frame of a test against a started server: the body runs; if it fails, the server's log
// tail is printed first; either way the clients are stopped, then the server, which must exit 0.
import assert from 'node:assert/strict';

import type { LabProcess } from '../../lab/vpn-lab';

/** `clients()` is read when the body has ended, so the body may start them itself. */
export async function whileServing(
  server: LabProcess,
  clients: () => readonly (LabProcess | null)[],
  body: () => Promise<void>,
  cleanup: () => void = () => undefined,
): Promise<void> {
  try {
    await body();
  } catch (error) {
    console.error(server.log().slice(-6000));
    throw error;
  } finally {
    cleanup();
    await Promise.all(clients().map((c) => c?.stop()));
    assert.equal(await server.stop(), 0, server.log().slice(-2000));
  }
}

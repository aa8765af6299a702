// What a client-connect script writes to its file (client-scripts.ts runClientConnect reads it with
// parseClientConfig, then merges it over the client's CCD file). The script runs with the peer's
// IV_ variables in its environment, so the input's first line doubles as peer-info text.
// A bad output gives a message, never a throw.
import { mergeClientConfig, parseClientConfig } from '../../../src/main/server/clients';
import type { CcdSettings } from '../../../src/main/server/clients';
import { peerInfoEnvironment } from '../../../src/main/server/client-scripts';
import { Finding } from '../finding';

const CCD = parseClientConfig(
  'push "route 10.9.0.0 255.255.0.0"\niroute 192.168.50.0 255.255.255.0\nifconfig-push 10.8.0.9 255.255.255.0\n',
  'ccd/alice',
);

export function fuzz(data: Buffer): void {
  if (typeof CCD === 'string') throw new Finding(`the fixed CCD file does not parse: ${CCD}`);
  const text = data.toString('utf8');
  for (const [k, v] of Object.entries(peerInfoEnvironment(text)))
    if (!k.startsWith('IV_') || v.includes('\n')) throw new Finding('peerInfoEnvironment');
  const dynamic = parseClientConfig(text, "client-connect output for 'alice'");
  if (typeof dynamic === 'string') {
    // Only a ConfigError's message (file:line: ...) is a refusal; parseClientConfig catches everything.
    if (!dynamic.startsWith("client-connect output for 'alice':")) throw new Finding(`parseClientConfig: not a ConfigError: ${dynamic}`);
    return;
  }
  const merged: CcdSettings | null = mergeClientConfig(CCD, dynamic);
  if (merged === null) throw new Finding('mergeClientConfig lost both');
  if (merged.iroutes.length !== CCD.iroutes.length + dynamic.iroutes.length) throw new Finding('mergeClientConfig: iroutes');
  if (dynamic.ifconfigPush !== undefined && merged.ifconfigPush !== dynamic.ifconfigPush)
    throw new Finding('mergeClientConfig: the script did not win');
}

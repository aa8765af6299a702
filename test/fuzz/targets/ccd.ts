// client-config-dir files (clients.ts parseClientConfig): push, push-reset, ifconfig-push,
// ifconfig-ipv6-push, iroute, disable. A bad file gives a message, never a throw; what parses
// merges with another file's settings as the server merges a CCD file and client-connect output.
import { mergeClientConfig, parseClientConfig } from '../../../src/main/server/clients';
import { Finding } from '../finding';

export function fuzz(data: Buffer): void {
  const text = data.toString('utf8');
  const ccd = parseClientConfig(text, 'ccd/alice');
  if (typeof ccd === 'string') {
    // parseClientConfig turns any exception into its message; only a ConfigError's (file:line: ...) is a refusal.
    if (!ccd.startsWith('ccd/alice:')) throw new Finding(`parseClientConfig: not a ConfigError: ${ccd}`);
    return;
  }
  if (typeof ccd.disabled !== 'boolean' || !Array.isArray(ccd.push) || !Array.isArray(ccd.iroutes))
    throw new Finding('parseClientConfig: malformed settings');
  const merged = mergeClientConfig(ccd, ccd);
  if (merged === null || merged.push.length !== (ccd.pushReset ? ccd.push.length : 2 * ccd.push.length))
    throw new Finding('mergeClientConfig: push list');
}

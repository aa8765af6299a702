// Turns the installer-written samples of config-samples.ts into configs that run in a VpnLab:
// the inline PEM and key blocks and the files they name hold the lab's real test PKI and keys,
// the public address becomes the lab's server underlay, the certificate names the lab's, and
// the absolute paths a sample lists (a container's PKI, a package's log directory) lie under the
// case's own directory. Every other line stays as the installer wrote it.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { SERVER_UNDERLAY, type VpnLab } from '../../lab/vpn-lab';
import type { Sample } from '../config-samples';

const BLOCK = /<(ca|cert|key|tls-crypt|tls-auth|tls-crypt-v2)>\r?\n[\s\S]*?<\/\1>/g;

const USERNAME = '1234567890123456';
const PASSWORD = 'm';

/**
 * The one static key behind every wrap a sample names, in a file or inline: the format is the same
 * for tls-auth and tls-crypt, and installers name the file either way (DigitalOcean's tutorial
 * makes its tls-crypt key as ta.key).
 */
function wrapKey(lab: VpnLab): string {
  return readFileSync(lab.keys.tlsCrypt, 'utf8');
}

/** What a file named by a sample holds, by its name as the installers write it. */
function fileContent(lab: VpnLab, name: string): string {
  const pki = lab.pki;
  if (name === 'ca.crt' || name.endsWith('_ca.crt')) return pki.caCert;
  if (name === 'client.crt') return pki.clientCert;
  if (name === 'client.key') return pki.clientKey;
  if (name.endsWith('.crt')) return pki.serverCert;
  if (name === 'ta.key' || name === 'tc.key' || name === 'tls-crypt.key') return wrapKey(lab);
  if (name === 'tls-crypt-v2.key') return readFileSync(lab.keys.tlsCryptV2Server, 'utf8');
  if (name.endsWith('.key')) return pki.serverKey;
  if (name === 'crl.pem') return pki.emptyCrl;
  // A provider's login (account number and password) and the server's check of it.
  if (name.endsWith('userpass.txt')) return `${USERNAME}\n${PASSWORD}\n`;
  if (name === 'check-user.sh')
    return `#!/bin/sh\n# $1: a file holding the username and the password, one per line.\n[ "$(sed -n 1p "$1")" = "${USERNAME}" ] && [ "$(sed -n 2p "$1")" = "${PASSWORD}" ]\n`;
  // RFC 7919 ffdhe2048, the group Nyr's script writes as dh.pem.
  if (/^dh\w*\.pem$/.test(name))
    return execFileSync('openssl', ['genpkey', '-genparam', '-algorithm', 'DH', '-pkeyopt', 'group:ffdhe2048'], { encoding: 'utf8' });
  return '';
}

/**
 * Where a file a sample names lives for a run in `dir`: a relative name in it, an absolute one
 * (a container's /etc/openvpn/pki, a package's /var/log/openvpn) under it, so no run touches the
 * machine's own files.
 */
export function samplePath(dir: string, name: string): string {
  return path.join(dir, name);
}

/** The sample's text for a run in `dir`: the absolute paths it lists point under `dir` (nothing else does). */
export function sampleText(dir: string, sample: Sample): string {
  let text = sample.text;
  for (const name of sample.files) if (path.isAbsolute(name)) text = text.split(name).join(samplePath(dir, name));
  return text;
}

/** The sample's text with the lab's material, written into `dir` with the files it names; returns the config's path. */
export function materialise(lab: VpnLab, sample: Sample, dir: string): string {
  mkdirSync(dir, { recursive: true });
  for (const name of sample.files) {
    const file = samplePath(dir, name);
    if (name.endsWith('/')) mkdirSync(file, { recursive: true });
    else {
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, fileContent(lab, path.basename(name)), { mode: name.endsWith('.sh') ? 0o755 : 0o644 });
    }
  }
  const eol = sample.text.includes('\r\n') ? '\r\n' : '\n';
  const inline: Record<string, string> = {
    ca: lab.pki.caCert,
    cert: lab.pki.clientCert,
    key: lab.pki.clientKey,
    'tls-crypt': wrapKey(lab),
    'tls-auth': wrapKey(lab),
    // A client key wrapped by the lab's tls-crypt-v2 server key (the file above).
    'tls-crypt-v2': readFileSync(lab.keys.tlsCryptV2Client, 'utf8'),
  };
  const text = sampleText(dir, sample)
    .replace(BLOCK, (_all, tag: string) => `<${tag}>${eol}${inline[tag]!.trim().replace(/\n/g, eol)}${eol}</${tag}>`)
    .replace(/^remote \S+ (\d+)/gm, `remote ${SERVER_UNDERLAY} $1`)
    .replace(/^local \S+/m, `local ${SERVER_UNDERLAY}`)
    .replace(/verify-x509-name \S+ name/, 'verify-x509-name server name')
    // The whole subject (verify-x509-name's default type): the lab's server certificate has only its CN.
    .replace(/^verify-x509-name CN=\S+$/m, 'verify-x509-name CN=server');
  const file = path.join(dir, sample.name);
  writeFileSync(file, text);
  return file;
}

// Checks of the peer certificate after the TLS handshake (ssl_verify.c verify_cert,
// verify_peer_cert): chain and CRL result of the handshake (skipped without a CA), peer-fingerprint,
// remote-cert-tls EKU, remote-cert-ku, verify-x509-name, x509-username-field. A bare server
// TLSSocket does not enforce the chain itself (node-tls.md).

import { certPurposeMatches } from '../native/tls-context';
import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { DetailedPeerCertificate, PeerCertificate, TLSSocket } from 'node:tls';

import { keyUsageOf } from './cert-key-usage';
import { x509Username } from './cert-username';
import type { PeerChecks, VerifyHash } from './types';

const EKU_SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const EKU_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

/** OpenSSL's long and short names of the usual extended key usages, lower-cased, to OIDs. */
const EKU_NAMES = new Map<string, string>([
  ['tls web server authentication', EKU_SERVER_AUTH],
  ['serverauth', EKU_SERVER_AUTH],
  ['tls web client authentication', EKU_CLIENT_AUTH],
  ['clientauth', EKU_CLIENT_AUTH],
  ['code signing', '1.3.6.1.5.5.7.3.3'],
  ['codesigning', '1.3.6.1.5.5.7.3.3'],
  ['e-mail protection', '1.3.6.1.5.5.7.3.4'],
  ['emailprotection', '1.3.6.1.5.5.7.3.4'],
  ['time stamping', '1.3.6.1.5.5.7.3.8'],
  ['timestamping', '1.3.6.1.5.5.7.3.8'],
  ['ocsp signing', '1.3.6.1.5.5.7.3.9'],
  ['ocspsigning', '1.3.6.1.5.5.7.3.9'],
]);

export interface VerifyX509Name {
  readonly name: string;
  /** OpenVPN's types: 'subject' (whole DN), 'name' (CN, the default), 'name-prefix'. */
  readonly type?: 'subject' | 'name' | 'name-prefix';
}

export interface PeerVerifyConfig {
  /** --remote-cert-tls: the EKU the peer certificate must have. */
  readonly remoteCertTls?: 'server' | 'client';
  /** --ns-cert-type: the TLS role OpenSSL's purpose check must allow the peer certificate. */
  readonly nsCertType?: 'server' | 'client';
  /** --verify-hash: fingerprints one of which the certificate above the peer's must have. */
  readonly verifyHash?: VerifyHash;
  /** --remote-cert-eku: an OID, or a name OpenSSL gives it ("TLS Web Client Authentication", clientAuth). */
  readonly remoteCertEku?: string;
  /** --remote-cert-ku: values (OpenVPN's byte) one of which the key usage must include; [] only asks for the extension. */
  readonly remoteCertKu?: readonly number[];
  readonly verifyX509Name?: VerifyX509Name;
  /** --crl-verify DIR dir: a file named by the peer's decimal serial number revokes it. */
  readonly crlDir?: string;
  /** Set when the crl-verify file could not be loaded: every peer is refused. */
  readonly crlUnavailable?: string;
  /** --x509-username-field: the certificate fields that name the peer instead of its CN (x509Username). */
  readonly x509UsernameField?: readonly string[];
  /** --peer-fingerprint: the peer certificate's SHA256 fingerprint must be one of these ("AB:CD:..."). */
  readonly peerFingerprints?: readonly string[];
  /**
   * No CA is configured: the chain is not checked (a self-signed peer is what peer-fingerprint
   * set-ups use), the fingerprint is (OpenVPN's verify_hash_no_ca).
   */
  readonly noCa?: boolean;
}

export type PeerVerifyResult =
  | { readonly ok: true; readonly commonName: string; readonly subject: string; /** Hex, upper case. */ readonly serialNumber: string }
  | { readonly ok: false; readonly reason: string };

/** What the checks read of the peer certificate. */
interface PeerCertFields {
  /** "C=..\nCN=x" lines, as X509Certificate.subject gives them. */
  readonly subject: string;
  readonly serialNumber: string;
  readonly keyUsage: readonly string[];
}

// The handshake's own verify result, which node only reads for tls.Server sockets.
interface VerifyHandle {
  verifyError(): Error | null;
}

function handshakeVerifyError(socket: TLSSocket): Error | null | undefined {
  const handle = (socket as unknown as { _handle?: Partial<VerifyHandle> | null })._handle;
  if (handle === null || handle === undefined || typeof handle.verifyError !== 'function') return undefined;
  return handle.verifyError();
}

/**
 * ssl_verify.c string_mod_remap_name: a name or login the peer chose keeps its printable
 * characters (UTF-8 included), and each control character becomes '_', so none reaches a log
 * line, a script's environment or the management interface raw (a newline there would forge a
 * line of its own).
 */
export function remapName(text: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are what this replaces
  return text.replace(/[\x00-\x1f\x7f]/g, '_');
}

/**
 * The certificate's common name as it is written (the last CN, as OpenVPN's
 * extract_x509_field_ssl takes it): node's peer-certificate object holds the raw values, where
 * X509Certificate.subject escapes them RFC 2253-style ("Doe\\, John" for "Doe, John").
 */
function rawCommonName(socket: TLSSocket): string | null {
  const cn = (socket.getPeerCertificate(false).subject as unknown as Record<string, unknown> | undefined)?.CN;
  if (typeof cn === 'string') return cn;
  if (Array.isArray(cn) && typeof cn[cn.length - 1] === 'string') return cn[cn.length - 1] as string;
  return null;
}

/** Common name of an X509Certificate subject ("C=..\nCN=x" lines); '' when none. */
export function subjectCommonName(subject: string): string {
  for (const line of subject.split('\n')) {
    if (line.startsWith('CN=')) return line.slice(3);
  }
  return '';
}

/** OpenVPN's name for a peer whose common name is not known, one without a certificate among them (tls_common_name). */
export const UNDEF_COMMON_NAME = 'UNDEF';

/**
 * What verify-client-cert means to one end's TLS: whether it asks the peer for a certificate at
 * all (a server with `none` does not), and whether it goes on without one (a server with `none`
 * or `optional`; a client always needs the server's).
 */
export function peerCertificatePolicy(
  role: 'client' | 'server',
  verifyClientCert: 'none' | 'optional' | 'require' | undefined,
): { request: boolean; optional: boolean } {
  if (role === 'client') return { request: true, optional: false };
  return { request: verifyClientCert !== 'none', optional: verifyClientCert === 'none' || verifyClientCert === 'optional' };
}

/** Whether the TLS peer showed a certificate (getPeerCertificate gives {} when it did not). */
export function hasPeerCertificate(socket: TLSSocket): boolean {
  return Object.keys(socket.getPeerCertificate(false)).length > 0;
}

/**
 * The peer's certificate, parsed from its DER. Not socket.getPeerX509Certificate(): in Node 20
 * every call keeps a reference to the peer certificate that is never released (its X509, key
 * and names, about 4.5 KiB a handshake on each side), so a server whose clients renegotiate
 * grew without bound (bench/renegotiation-memory.bench.ts; test/session-memory.test.ts).
 */
function peerCertificate(socket: TLSSocket): X509Certificate | undefined {
  const raw = socket.getPeerCertificate(false).raw as Buffer | undefined;
  return raw === undefined || raw.length === 0 ? undefined : new X509Certificate(raw);
}

/**
 * Whole check of the peer certificate once the handshake is done. `ca` are the trusted PEM
 * certificates (for the fallback chain check when the handshake result cannot be read).
 */
export function verifyPeer(socket: TLSSocket, ca: readonly X509Certificate[], cfg: PeerVerifyConfig): PeerVerifyResult {
  const err = handshakeVerifyError(socket);
  // The usual case reads the fields from the certificate OpenSSL already holds (about 40 us);
  // an X509Certificate parsed from its DER costs about 130 us (a twentieth of a handshake) and is
  // made only where the fallback check or the exact subject line (verify-x509-name subject)
  // needs it.
  const plain = err !== undefined && cfg.verifyX509Name?.type !== 'subject';
  let fields = plain ? plainFields(socket) : null;
  let cert: X509Certificate | undefined;
  if (fields === null) {
    cert = peerCertificate(socket);
    if (cert === undefined) return { ok: false, reason: 'no peer certificate' };
    fields = { subject: cert.subject, serialNumber: cert.serialNumber, keyUsage: cert.keyUsage ?? [] };
  }
  if (cfg.noCa === true) {
    // Nothing to chain to; without fingerprints there is nothing to trust.
    if (cfg.peerFingerprints === undefined || cfg.peerFingerprints.length === 0)
      return { ok: false, reason: 'VERIFY ERROR: no CA and no peer-fingerprint' };
  } else if (err !== undefined) {
    if (err !== null) return { ok: false, reason: `VERIFY ERROR: ${err.message}` };
  } else if (cert !== undefined) {
    // Fallback: direct issuer among the CAs, signature and validity dates.
    const now = Date.now();
    const leaf = cert;
    const issuer = ca.find((c) => leaf.checkIssued(c) && leaf.verify(c.publicKey));
    if (issuer === undefined) return { ok: false, reason: 'VERIFY ERROR: unable to get local issuer certificate' };
    if (Date.parse(cert.validFrom) > now || Date.parse(cert.validTo) < now) {
      return { ok: false, reason: 'VERIFY ERROR: certificate is not valid now' };
    }
  }
  if (cfg.peerFingerprints !== undefined) {
    const fingerprint = socket.getPeerCertificate(false).fingerprint256;
    if (!cfg.peerFingerprints.includes(fingerprint)) {
      return { ok: false, reason: hashMismatch(fingerprint) };
    }
  }
  if (cfg.verifyHash !== undefined) {
    const refused = checkLevelOneHash(socket, ca, cfg.verifyHash);
    if (refused !== null) return { ok: false, reason: refused };
  }
  if (cfg.crlUnavailable !== undefined) return { ok: false, reason: `VERIFY ERROR: CRL not loaded (${cfg.crlUnavailable})` };
  if (cfg.crlDir !== undefined) {
    const revoked = revokedInCrlDir(socket.getPeerCertificate(true), cfg.crlDir);
    if (revoked !== null) return { ok: false, reason: revoked };
  }
  // ssl_verify.c verify_peer_cert: ns-cert-type first, then the key usages.
  if (cfg.nsCertType !== undefined) {
    const raw = socket.getPeerCertificate(false).raw as Buffer | undefined;
    if (raw === undefined || !certPurposeMatches(raw, cfg.nsCertType)) {
      return {
        ok: false,
        reason: `VERIFY nsCertType ERROR: ${fields.subject.split('\n').join(', ')}, require nsCertType=${cfg.nsCertType.toUpperCase()}`,
      };
    }
  }
  // remote-cert-tls asks for a keyUsage extension too (OpenVPN's OPENVPN_KU_REQUIRED).
  if (cfg.remoteCertKu !== undefined || cfg.remoteCertTls !== undefined) {
    const refused = checkKeyUsage(socket, cfg.remoteCertKu ?? []);
    if (refused !== null) return { ok: false, reason: refused };
  }
  if (cfg.remoteCertTls !== undefined) {
    const want = cfg.remoteCertTls === 'server' ? EKU_SERVER_AUTH : EKU_CLIENT_AUTH;
    if (!fields.keyUsage.includes(want)) {
      return {
        ok: false,
        reason: `certificate has no EKU ${cfg.remoteCertTls === 'server' ? 'TLS Web Server Authentication' : 'TLS Web Client Authentication'} (remote-cert-tls ${cfg.remoteCertTls})`,
      };
    }
  }
  if (cfg.remoteCertEku !== undefined) {
    const want = EKU_NAMES.get(cfg.remoteCertEku.toLowerCase()) ?? cfg.remoteCertEku;
    if (!fields.keyUsage.includes(want)) return { ok: false, reason: `certificate has no EKU ${cfg.remoteCertEku} (remote-cert-eku)` };
  }
  const subject = fields.subject;
  let cn = rawCommonName(socket) ?? subjectCommonName(subject);
  if (cfg.x509UsernameField !== undefined) {
    const named = x509Username(cfg.x509UsernameField, subject, fields.serialNumber, socket.getPeerCertificate(false).subjectaltname);
    if (typeof named !== 'string') return named;
    cn = named;
  }
  cn = remapName(cn);
  const xn = cfg.verifyX509Name;
  if (xn !== undefined) {
    const type = xn.type ?? 'name';
    const ok =
      type === 'subject'
        ? subject.split('\n').join(', ') === xn.name || subject.split('\n').join('/') === xn.name.replace(/^\//, '')
        : type === 'name'
          ? cn === xn.name
          : cn.startsWith(xn.name);
    if (!ok) return { ok: false, reason: `verify-x509-name ${type} '${xn.name}' does not match subject CN '${cn}'` };
  }
  return { ok: true, commonName: cn, subject, serialNumber: fields.serialNumber };
}

/**
 * The peer checks set in `from` (the options, a shard's config, a load profile), and only those:
 * one copy for the server's shards, the client and the load generator's simulated clients.
 */
export function peerChecks(from: PeerChecks): PeerChecks {
  return {
    ...(from.remoteCertTls !== undefined ? { remoteCertTls: from.remoteCertTls } : {}),
    ...(from.nsCertType !== undefined ? { nsCertType: from.nsCertType } : {}),
    ...(from.verifyHash !== undefined ? { verifyHash: from.verifyHash } : {}),
    ...(from.remoteCertEku !== undefined ? { remoteCertEku: from.remoteCertEku } : {}),
    ...(from.remoteCertKu !== undefined ? { remoteCertKu: from.remoteCertKu } : {}),
    ...(from.verifyX509Name !== undefined ? { verifyX509Name: from.verifyX509Name } : {}),
    ...(from.x509UsernameField !== undefined ? { x509UsernameField: from.x509UsernameField } : {}),
  };
}

/**
 * --verify-hash (ssl_verify.c, depth 1): why the certificate one level above the peer's is
 * refused, or null. That certificate is the one whose key signed the peer's: a trusted CA first
 * (OpenSSL builds the verified chain trusted-first), else what the peer sent, each checked by
 * signature, not by name alone (a certificate sent under the right name proves nothing). A peer
 * certificate with no such issuer has no level 1 and passes, as in OpenVPN.
 */
function checkLevelOneHash(socket: TLSSocket, ca: readonly X509Certificate[], verifyHash: VerifyHash): string | null {
  const detailed = socket.getPeerCertificate(true);
  const raw = detailed.raw as Buffer | undefined;
  if (raw === undefined || raw.length === 0) return null;
  const leaf = new X509Certificate(raw);
  const sent = detailed.issuerCertificate as DetailedPeerCertificate | undefined;
  const candidates = [...ca];
  if (sent !== undefined && sent !== detailed && sent.raw !== undefined && sent.raw.length > 0)
    candidates.push(new X509Certificate(sent.raw));
  const issuer = candidates.find((c) => leaf.checkIssued(c) && leaf.verify(c.publicKey));
  if (issuer === undefined) return null;
  const fingerprint = verifyHash.algo === 'sha1' ? issuer.fingerprint : issuer.fingerprint256;
  if (verifyHash.hashes.includes(fingerprint)) return null;
  return hashMismatch(fingerprint);
}

/** OpenVPN's words for a peer-fingerprint or verify-hash refusal (the same for both), hex in lower case as it prints it. */
function hashMismatch(fingerprint: string): string {
  return `TLS Error: --tls-verify/--peer-fingerprint certificate hash verification failed. (got certificate fingerprint: ${fingerprint.toLowerCase()})`;
}

/** Why the peer certificate's key usage is refused (remote-cert-ku), or null. */
function checkKeyUsage(socket: TLSSocket, wanted: readonly number[]): string | null {
  const raw = socket.getPeerCertificate(false).raw as Buffer | undefined;
  const ku = raw === undefined ? null : keyUsageOf(raw);
  if (ku === null) return 'certificate does not have key usage extension';
  // Each wanted value's bits must all be in the certificate's; 0 matches nothing, as in OpenVPN.
  if (wanted.length === 0 || wanted.some((w) => w !== 0 && (ku & w) === w)) return null;
  const hex = (n: number): string => n.toString(16).padStart(4, '0');
  return `certificate has key usage ${hex(ku)}, expected one of ${wanted.map(hex).join(', ')} (remote-cert-ku)`;
}

// Values X509Certificate.subject would print differently from the raw string: RFC 2253 escapes
// (ASN1_STRFLGS_ESC_2253), control characters and anything outside printable ASCII.
const PLAIN_VALUE = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/;
const ESCAPED = /[,+"\\<>;]/;

/**
 * The subject lines, serial and EKUs from node's plain peer-certificate object, or null when the
 * subject is not one X509Certificate.subject prints verbatim (an escaped or non-ASCII value, a
 * repeated attribute, which the object folds into an array): then X509Certificate decides. The
 * object does not show multi-valued RDNs (CN=a+OU=b): those come out as separate lines, so the
 * common name is the CN value alone, as OpenVPN takes it.
 */
export function plainFields(socket: TLSSocket): PeerCertFields | null {
  const c: PeerCertificate | DetailedPeerCertificate = socket.getPeerCertificate(false);
  // An empty object when there is no peer certificate.
  if (c === null || typeof c !== 'object' || typeof c.serialNumber !== 'string' || typeof c.subject !== 'object') return null;
  const lines: string[] = [];
  for (const [key, value] of Object.entries(c.subject as unknown as Record<string, unknown>)) {
    if (typeof value !== 'string' || !PLAIN_VALUE.test(value) || ESCAPED.test(value) || value.startsWith('#')) return null;
    lines.push(`${key}=${value}`);
  }
  return { subject: lines.join('\n'), serialNumber: c.serialNumber, keyUsage: c.ext_key_usage ?? [] };
}

/**
 * crl-verify DIR dir: OpenVPN checks every certificate of the chain for a file named by its
 * decimal serial number; only presence counts, the file's content is never read.
 */
function revokedInCrlDir(leaf: DetailedPeerCertificate, dir: string): string | null {
  let cert: DetailedPeerCertificate | undefined = leaf;
  for (let depth = 0; cert !== undefined && cert.serialNumber !== undefined && depth < 16; depth++) {
    const serial = BigInt(`0x${cert.serialNumber}`).toString();
    if (existsSync(join(dir, serial))) return `VERIFY CRL: depth=${depth}, serial=${serial} is revoked (crl-verify ${dir} dir)`;
    // Node links the root (self-issued) to itself as its own issuer: the walk ends there.
    const issuer: DetailedPeerCertificate | undefined = cert.issuerCertificate;
    cert = issuer === undefined || issuer === cert || issuer.raw.equals(cert.raw) ? undefined : issuer;
  }
  return null;
}

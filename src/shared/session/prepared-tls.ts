// The TLS context a session negotiates with, made once per material and kept current with a
// changing crl-verify file.
//
// Parsing the PEM keys and certificates (about 1 ms) was a fifth of a handshake's CPU, so a
// server builds the secure context once and every session shares it. A crl-verify file is
// checked again before each TLS negotiation (a new client or a renegotiation), as OpenVPN does
// (ssl.c tls_ctx_reload_crl): revoking a client with `easyrsa gen-crl` and a copy of crl.pem
// needs no restart. A changed file that cannot be read or parsed refuses every peer until it is
// mended (OpenVPN's "VERIFY ERROR: CRL not loaded"); one that cannot even be stat'ed (replaced
// in a non-atomic copy) keeps the CRL loaded last.

import { X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { SecureContext } from 'node:tls';
import { createControlSecureContext } from './tls-channel';
import type { TlsMaterial } from './types';
import { cachedFor } from '../weak-cache';

export interface PreparedTls {
  readonly context: SecureContext;
  /** The trusted CA certificates (peer-verify's fallback chain check). */
  readonly caCerts: readonly X509Certificate[];
  /** crl-verify DIR dir: a file named by a peer's decimal serial number revokes it. */
  readonly crlDir?: string;
  /** Why the changed crl-verify file is not loaded: every peer is refused until it is. */
  readonly crlUnavailable?: string;
}

interface CrlFileState {
  mtimeMs: number;
  size: number;
  prepared: PreparedTls;
}

const preparedByMaterial = new WeakMap<TlsMaterial, PreparedTls>();
const crlStateByMaterial = new WeakMap<TlsMaterial, CrlFileState>();

function prepare(material: TlsMaterial): PreparedTls {
  return {
    context: createControlSecureContext(material),
    caCerts: splitPemCertificates(material.ca),
    ...(material.crlDir !== undefined ? { crlDir: material.crlDir } : {}),
  };
}

function preparedOnce(material: TlsMaterial): PreparedTls {
  return cachedFor(preparedByMaterial, material, () => prepare(material));
}

/** What a TLS negotiation starting now uses. Throws only for material that never worked. */
export function preparedTls(material: TlsMaterial): PreparedTls {
  const file = material.crlFile;
  if (file === undefined) return preparedOnce(material);
  const state = cachedFor(crlStateByMaterial, material, () => ({
    mtimeMs: file.mtimeMs,
    size: file.size,
    prepared: preparedOnce(material),
  }));
  let now: { mtimeMs: number; size: number };
  try {
    now = statSync(file.path);
  } catch {
    return state.prepared;
  }
  if (now.mtimeMs === state.mtimeMs && now.size === state.size) return state.prepared;
  state.mtimeMs = now.mtimeMs;
  state.size = now.size;
  state.prepared = reloadCrl(material, file.path);
  return state.prepared;
}

function reloadCrl(material: TlsMaterial, path: string): PreparedTls {
  try {
    return prepare({ ...material, crl: readFileSync(path, 'utf8') });
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    const { crl: _stale, ...withoutCrl } = material;
    return { ...prepare(withoutCrl), crlUnavailable: `cannot load crl-verify file ${path}: ${reason}` };
  }
}

function splitPemCertificates(pem: string): X509Certificate[] {
  const out: X509Certificate[] = [];
  const re = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
  for (const m of pem.match(re) ?? []) {
    try {
      out.push(new X509Certificate(m));
    } catch {
      // A broken CA entry only weakens the fallback check; node's own context refuses it too.
    }
  }
  return out;
}

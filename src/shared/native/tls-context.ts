// Settings of a node:tls SecureContext that node:tls has no option for, and a check of what it
// takes without one (src/native/tls-context.cc).
import type { SecureContext } from 'node:tls';
import { addon } from './addon';

/**
 * No TLS 1.3 session tickets after a handshake and no session cache in this context (OpenVPN
 * never resumes a session). Call before the context's first session. False where this Node.js
 * does not expose the context's OpenSSL object; it then stays as node:tls made it.
 */
export function disableTlsResumption(context: SecureContext): boolean {
  const inner: unknown = (context as { context?: unknown }).context;
  if (typeof inner !== 'object' || inner === null) return false;
  return addon.disableTlsResumption((inner as { _external?: unknown })._external);
}

/**
 * --ns-cert-type: whether the DER certificate is meant for a TLS `role` as OpenSSL's
 * X509_check_purpose says, or by its Netscape cert type extension alone (OpenVPN's fallback).
 */
export function certPurposeMatches(der: Buffer, role: 'server' | 'client'): boolean {
  return addon.certPurposeMatches(der, role);
}

/** The size in bits of the PEM DH parameters in `pem`; 0 when it holds none (node:tls would drop them silently). */
export function dhParameterBits(pem: string): number {
  return addon.dhParameterBits(pem);
}

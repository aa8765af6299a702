// A certificate's keyUsage extension (RFC 5280 4.2.1.3), read from its DER for remote-cert-ku and
// remote-cert-tls. node:tls gives the extended key usages but not these bits, and parsing the
// whole certificate again (X509Certificate, OpenSSL's d2i) for one extension would cost a
// handshake far more than walking to it.

/** keyUsage's OID, 2.5.29.15, as DER content bytes. */
const KEY_USAGE_OID = [0x55, 0x1d, 0x0f];

interface Element {
  tag: number;
  /** Where the content starts and ends in the buffer. */
  start: number;
  end: number;
}

/** The DER element at `at` (tag, definite length), or null where it runs past `limit` or is malformed. */
function element(der: Uint8Array, at: number, limit: number): Element | null {
  if (at + 2 > limit) return null;
  const tag = der[at]!;
  let length = der[at + 1]!;
  let start = at + 2;
  if (length & 0x80) {
    const bytes = length & 0x7f;
    if (bytes === 0 || bytes > 4 || start + bytes > limit) return null;
    length = 0;
    for (let i = 0; i < bytes; i++) length = length * 256 + der[start + i]!;
    start += bytes;
  }
  const end = start + length;
  return end > limit ? null : { tag, start, end };
}

/** The elements directly inside `outer`, or null when one of them is malformed. */
function children(der: Uint8Array, outer: Element): Element[] | null {
  const out: Element[] = [];
  for (let at = outer.start; at < outer.end;) {
    const e = element(der, at, outer.end);
    if (e === null) return null;
    out.push(e);
    at = e.end;
  }
  return out;
}

function isKeyUsageOid(der: Uint8Array, e: Element): boolean {
  return e.tag === 0x06 && e.end - e.start === KEY_USAGE_OID.length && KEY_USAGE_OID.every((b, i) => der[e.start + i] === b);
}

/**
 * The certificate's key usage as OpenVPN compares it (ssl_verify_openssl.c x509_verify_cert_ku):
 * the first eight bits, digitalSignature as 0x80 down to encipherOnly as 0x01. null when the
 * certificate has no keyUsage extension (or its DER cannot be read, which counts as none).
 */
export function keyUsageOf(der: Uint8Array): number | null {
  const cert = element(der, 0, der.length);
  if (cert === null || cert.tag !== 0x30) return null;
  const tbs = children(der, cert)?.[0];
  if (tbs === undefined || tbs.tag !== 0x30) return null;
  // The extensions are tbsCertificate's [3] EXPLICIT element.
  const wrapper = children(der, tbs)?.find((e) => e.tag === 0xa3);
  if (wrapper === undefined) return null;
  const list = children(der, wrapper)?.[0];
  if (list === undefined || list.tag !== 0x30) return null;
  for (const extension of children(der, list) ?? []) {
    const parts = children(der, extension);
    if (parts === null || parts.length < 2 || !isKeyUsageOid(der, parts[0]!)) continue;
    // extnID, critical BOOLEAN (optional), extnValue OCTET STRING holding a BIT STRING.
    const value = parts[parts.length - 1]!;
    if (value.tag !== 0x04) return null;
    const bits = element(der, value.start, value.end);
    if (bits === null || bits.tag !== 0x03 || bits.end - bits.start < 1) return null;
    // The first content byte counts the unused bits; the usages start at the next byte's top bit.
    return bits.end - bits.start >= 2 ? der[bits.start + 1]! : 0;
  }
  return null;
}

// x509-username-field: the name a peer goes by (common_name in logs, status, client-config-dir)
// when it is not the subject's CN, read from the fields peer-verify.ts already has.

/** OpenSSL's long names of the usual subject attributes, to the short ones subject lines use. */
const SUBJECT_SHORT_NAMES = new Map<string, string>([
  ['commonName', 'CN'],
  ['countryName', 'C'],
  ['localityName', 'L'],
  ['stateOrProvinceName', 'ST'],
  ['organizationName', 'O'],
  ['organizationalUnitName', 'OU'],
  ['userId', 'UID'],
  ['domainComponent', 'DC'],
  ['givenName', 'GN'],
  ['surname', 'SN'],
]);

/**
 * The peer's name from x509-username-field (ssl_verify_openssl.c backend_x509_get_username): a
 * subject attribute's last value, `serialNumber` the certificate's serial as 0x and upper-case
 * hex, `ext:subjectAltName` its last email; several fields joined with '_'. A field the
 * certificate lacks refuses the peer, as OpenVPN's VERIFY ERROR does.
 */
export function x509Username(
  fields: readonly string[],
  subject: string,
  serialNumber: string,
  subjectAltName: string | undefined,
): string | { readonly ok: false; readonly reason: string } {
  const parts: string[] = [];
  for (const field of fields) {
    let value: string | undefined;
    if (field === 'ext:subjectAltName') {
      const emails = (subjectAltName ?? '').split(', ').filter((entry) => entry.startsWith('email:'));
      value = emails.at(-1)?.slice('email:'.length);
    } else if (field === 'serialNumber') {
      value = serialNumber === '' ? undefined : `0x${serialNumber.toUpperCase()}`;
    } else {
      const key = `${SUBJECT_SHORT_NAMES.get(field) ?? field}=`;
      value = subject
        .split('\n')
        .filter((line) => line.startsWith(key))
        .at(-1)
        ?.slice(key.length);
    }
    if (value === undefined || value === '') {
      return {
        ok: false,
        reason: `VERIFY ERROR: could not extract ${field} from X509 subject string ('${subject.split('\n').join(', ')}')`,
      };
    }
    parts.push(value);
  }
  return parts.join('_');
}

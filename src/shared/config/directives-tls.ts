// Directives of the control channel (TLS, keys, renegotiation) and the data channel ciphers.

import { Directive } from './lexer';
import { KeyDirection } from './options-types';
import { DirectiveTable, fail, flag, int, integer, oneOf } from './registry';

const DECIMAL_SECONDS = /^[0-9]+$/;

const MAX_SECONDS = 0x7fffffff;
const TLS_VERSIONS = ['1.0', '1.1', '1.2', '1.3'] as const;

/** SHA256's length: a peer-fingerprint is 32 bytes in hex pairs separated by ':' (options.c parse_hash_fingerprint). */
const FINGERPRINT_BYTES = 32;

/** One "ab:CD:..." fingerprint in node's spelling (upper case), or a config error naming the line. */
function parseFingerprint(d: Directive, text: string, bytes = FINGERPRINT_BYTES): string {
  const pairs = text.split(':');
  if (!pairs.every((p) => /^[0-9a-fA-F]{2}$/.test(p))) fail(d, `format error in hash fingerprint: ${text}`);
  if (pairs.length !== bytes) {
    fail(d, `hash fingerprint is wrong length - expected ${bytes} bytes, got ${pairs.length}: ${text}`);
  }
  return pairs.join(':').toUpperCase();
}

/** An inline block: one fingerprint a line; blank lines and lines starting with '#' or ';' skipped. */
function parseFingerprintLines(d: Directive, block: string, bytes = FINGERPRINT_BYTES): string[] {
  const out: string[] = [];
  for (const raw of block.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    out.push(parseFingerprint(d, line, bytes));
  }
  return out;
}

function keyDirection(d: Directive, s: string): KeyDirection {
  if (s === '0') return 0;
  if (s === '1') return 1;
  return fail(d, `bad key direction '${s}': expected 0 or 1`);
}

function cipherList(d: Directive, s: string): string[] {
  const list = s.split(':').filter((c) => c !== '');
  if (list.length === 0) fail(d, 'empty cipher list');
  // OpenVPN 2.6 caps data-ciphers at 127 characters.
  if (s.length > 127) fail(d, 'cipher list is longer than 127 characters');
  return list;
}

export const tlsDirectives: DirectiveTable = {
  'tls-server': flag('tlsServer'),
  'tls-client': flag('tlsClient'),
  ca: {
    min: 1,
    max: 1,
    inline: true,
    set(ctx, d) {
      ctx.o.ca = ctx.fileRef(d);
    },
  },
  'x509-username-field': {
    min: 1,
    max: 15,
    set(ctx, d, fields) {
      ctx.o.x509UsernameField = fields.map((field) => {
        const f = field as string;
        if (f.startsWith('ext:')) {
          if (f === 'ext:subjectAltName') return f;
          fail(d, `unsupported x509-username-field extension: ${f} (shardvpn reads ext:subjectAltName)`);
        }
        // OpenVPN 2.6 still upcases an all-lower-case attribute name ("ou"), with this warning.
        if (f === f.toLowerCase() && f !== f.toUpperCase()) {
          ctx.warn(
            d,
            `DEPRECATED FEATURE: automatically upcased the --x509-username-field parameter to '${f.toUpperCase()}'; please update your configuration`,
          );
          return f.toUpperCase();
        }
        return f;
      });
    },
  },
  'peer-fingerprint': {
    min: 1,
    max: 1,
    inline: true,
    set(ctx, d) {
      if (ctx.o.verifyHash !== undefined)
        fail(d, 'ERROR: Setting peer-fingerprint not allowed. --verify-hash and --peer-fingerprint are mutually exclusive');
      const parsed = d.inline === undefined ? [parseFingerprint(d, d.args[0]!)] : parseFingerprintLines(d, d.inline);
      ctx.o.peerFingerprints = [...(ctx.o.peerFingerprints ?? []), ...parsed];
    },
  },
  // Deprecated in OpenVPN 2.6 and still honoured: the fingerprint of the certificate one level
  // above the peer's (the CA that signed it). SHA1 unless SHA256 is named; an inline block of
  // fingerprints is SHA256.
  'verify-hash': {
    min: 1,
    max: 2,
    inline: true,
    set(ctx, d, args) {
      if (ctx.o.peerFingerprints !== undefined)
        fail(d, 'ERROR: Setting verify-hash not allowed. --verify-hash and --peer-fingerprint are mutually exclusive');
      const named = d.inline === undefined ? args[1] : undefined;
      const algo =
        named === undefined
          ? d.inline === undefined
            ? 'sha1'
            : 'sha256'
          : oneOf(d, named, 'hashing algorithm', ['SHA1', 'SHA256'] as const) === 'SHA1'
            ? 'sha1'
            : 'sha256';
      const bytes = algo === 'sha1' ? 20 : 32;
      const hashes = d.inline === undefined ? [parseFingerprint(d, args[0]!, bytes)] : parseFingerprintLines(d, d.inline, bytes);
      // As 2.6: the last line's algorithm applies to every hash (one of another length never matches).
      ctx.o.verifyHash = { algo, hashes: [...(ctx.o.verifyHash?.hashes ?? []), ...hashes] };
      ctx.warn(d, 'DEPRECATED OPTION: verify-hash is deprecated; use the level 1 certificate as --ca, or --peer-fingerprint');
    },
  },
  cert: {
    min: 1,
    max: 1,
    inline: true,
    set(ctx, d) {
      ctx.o.cert = ctx.fileRef(d);
    },
  },
  key: {
    min: 1,
    max: 1,
    inline: true,
    set(ctx, d) {
      ctx.o.key = ctx.fileRef(d);
    },
  },
  'extra-certs': {
    min: 1,
    max: 1,
    inline: true,
    set(ctx, d) {
      ctx.o.extraCerts = ctx.fileRef(d);
    },
  },
  pkcs12: {
    min: 1,
    max: 1,
    inline: true,
    set(ctx, d) {
      ctx.o.pkcs12 = ctx.fileRef(d);
      ctx.unsupported(d, 'pkcs12 is not supported by shardvpn yet; use ca, cert and key (PEM)');
    },
  },
  dh: {
    min: 1,
    max: 1,
    inline: true,
    set(ctx, d) {
      ctx.o.dh = d.inline === undefined && d.args[0] === 'none' ? 'none' : ctx.fileRef(d);
    },
  },
  'crl-verify': {
    min: 1,
    max: 2,
    inline: true,
    set(ctx, d, [, flag]) {
      if (flag !== undefined) oneOf(d, flag, 'crl-verify flag', ['dir']);
      ctx.o.crlVerify = { ref: ctx.fileRef(d), dir: flag === 'dir' };
    },
  },
  'remote-cert-tls': {
    min: 1,
    max: 1,
    set(ctx, d, [r]) {
      ctx.o.remoteCertTls = oneOf(d, r as string, 'peer role', ['server', 'client'] as const);
    },
  },
  'remote-cert-ku': {
    min: 0,
    max: 15,
    set(ctx, d, values) {
      ctx.o.remoteCertKu = values.map((v) => {
        // OpenVPN reads each with sscanf("%x"): hex digits, an optional 0x.
        const m = /^(?:0[xX])?([0-9a-fA-F]+)/.exec(v as string);
        if (m === null) fail(d, `bad key usage '${v as string}': expected hex, e.g. a0`);
        const n = parseInt(m[1]!, 16);
        if (n > 0xffff) fail(d, `bad key usage '${v as string}': above ffff`);
        return n;
      });
    },
  },
  'remote-cert-eku': {
    min: 1,
    max: 1,
    set(ctx, _d, [e]) {
      ctx.o.remoteCertEku = e as string;
    },
  },
  'verify-x509-name': {
    min: 1,
    max: 2,
    set(ctx, d, [name, type]) {
      if (name === '') fail(d, 'empty name');
      ctx.o.verifyX509Name = {
        name: name as string,
        type: type === undefined ? 'subject' : oneOf(d, type, 'name type', ['subject', 'name', 'name-prefix'] as const),
      };
    },
  },
  'tls-version-min': {
    min: 1,
    max: 2,
    set(ctx, d, [v, extra]) {
      if (extra !== undefined) oneOf(d, extra, 'flag', ['or-highest']);
      if ((TLS_VERSIONS as readonly string[]).includes(v as string)) {
        ctx.o.tlsVersionMin = v as (typeof TLS_VERSIONS)[number];
        ctx.o.tlsVersionMinOrHighest = false;
      } else if (extra === 'or-highest') {
        // An unknown version with or-highest means "the highest this TLS library has".
        ctx.o.tlsVersionMin = '1.3';
        ctx.o.tlsVersionMinOrHighest = true;
      } else {
        fail(d, `bad TLS version '${v as string}': expected ${TLS_VERSIONS.join(', ')}`);
      }
    },
  },
  'tls-version-max': {
    min: 1,
    max: 1,
    set(ctx, d, [v]) {
      ctx.o.tlsVersionMax = oneOf(d, v as string, 'TLS version', TLS_VERSIONS);
    },
  },
  'tls-cipher': {
    min: 1,
    max: 1,
    set(ctx, _d, [c]) {
      ctx.o.tlsCipher = c as string;
    },
  },
  'tls-ciphersuites': {
    min: 1,
    max: 1,
    set(ctx, _d, [c]) {
      ctx.o.tlsCiphersuites = c as string;
    },
  },
  'tls-cert-profile': {
    min: 1,
    max: 1,
    set(ctx, d, [p]) {
      ctx.o.tlsCertProfile = oneOf(d, p as string, 'profile', ['insecure', 'legacy', 'preferred', 'suiteb']);
    },
  },
  'tls-groups': {
    min: 1,
    max: 1,
    set(ctx, _d, [g]) {
      ctx.o.tlsGroups = g as string;
    },
  },
  'ecdh-curve': {
    min: 1,
    max: 1,
    set(ctx, _d, [c]) {
      ctx.o.ecdhCurve = c as string;
    },
  },
  'tls-auth': {
    min: 1,
    max: 2,
    inline: true,
    connection: true,
    set(ctx, d, [, dir]) {
      ctx.ce.tlsAuth = ctx.fileRef(d);
      // An inline key takes its direction from key-direction only.
      if (d.inline === undefined && dir !== undefined) ctx.ce.keyDirection = keyDirection(d, dir);
    },
  },
  'key-direction': {
    min: 1,
    max: 1,
    connection: true,
    set(ctx, d, [dir]) {
      ctx.ce.keyDirection = keyDirection(d, dir as string);
    },
  },
  'tls-crypt': {
    min: 1,
    max: 1,
    inline: true,
    connection: true,
    set(ctx, d) {
      ctx.ce.tlsCrypt = ctx.fileRef(d);
    },
  },
  'tls-crypt-v2': {
    min: 1,
    max: 2,
    inline: true,
    connection: true,
    set(ctx, d, [, flag]) {
      ctx.ce.tlsCryptV2 = ctx.fileRef(d);
      if (flag !== undefined) {
        ctx.o.tlsCryptV2ForceCookie = oneOf(d, flag, 'flag', ['force-cookie', 'allow-noncookie']) === 'force-cookie';
      }
    },
  },
  secret: {
    min: 1,
    max: 2,
    inline: true,
    set(ctx, d) {
      ctx.o.secret = ctx.fileRef(d);
      ctx.unsupported(d, 'static-key mode (secret) is not supported by shardvpn; use TLS (ca/cert/key)');
    },
  },
  'verify-client-cert': {
    min: 0,
    max: 1,
    set(ctx, d, [m]) {
      ctx.o.verifyClientCert = m === undefined ? 'require' : oneOf(d, m, 'mode', ['none', 'optional', 'require'] as const);
    },
  },
  // A client that sends no username or password is refused unless this is set; with it the
  // auth-user-pass-verify script or management-client-auth decides (empty values), as OpenVPN.
  'auth-user-pass-optional': flag('authUserPassOptional'),
  'static-challenge': {
    min: 2,
    max: 2,
    set(ctx, _d, [text, echo]) {
      // OpenVPN reads the flag with atoi: any non-zero number echoes the response.
      const flag = Number.parseInt(echo as string, 10);
      ctx.o.staticChallenge = { text: text as string, echo: Number.isFinite(flag) && flag !== 0 };
    },
  },
  'username-as-common-name': flag('usernameAsCommonName'),
  // OPT_P_GENERAL: lifetime, then the renewal time where it is a positive number, external-auth anywhere after.
  'auth-gen-token': {
    min: 0,
    max: 3,
    set(ctx, d, args) {
      const lifetimeS = args[0] !== undefined ? int(d, args[0], 'lifetime', 0, MAX_SECONDS) : 0;
      let renewalS = 0;
      let externalAuth = false;
      args.slice(1).forEach((arg, i) => {
        if (arg === 'external-auth') externalAuth = true;
        else if (i === 0 && DECIMAL_SECONDS.test(arg) && Number(arg) > 0) renewalS = int(d, arg, 'renewal time', 1, MAX_SECONDS);
        else fail(d, `Invalid argument to auth-gen-token: ${arg} (${i + 2})`);
      });
      ctx.o.authGenToken = { lifetimeS, renewalS, externalAuth };
    },
  },
  'auth-gen-token-secret': {
    min: 1,
    max: 1,
    inline: true,
    set(ctx, d) {
      ctx.o.authGenTokenSecret = ctx.fileRef(d);
    },
  },
  'auth-user-pass-verify': {
    min: 2,
    max: 2,
    set(ctx, d, [script, method]) {
      ctx.o.authUserPassVerify = {
        script: script as string,
        method: oneOf(d, method as string, 'method', ['via-env', 'via-file'] as const),
      };
    },
  },

  // renegotiation and handshake timers
  'tls-timeout': integer('tlsTimeout', 'seconds', 0, MAX_SECONDS),
  'reneg-sec': {
    min: 1,
    max: 2,
    set(ctx, d, [n, m]) {
      ctx.o.renegSec = int(d, n as string, 'seconds', 0, MAX_SECONDS);
      if (m !== undefined) ctx.o.renegSecMin = int(d, m, 'seconds', 0, MAX_SECONDS);
    },
  },
  'reneg-bytes': integer('renegBytes', 'bytes', 0, Number.MAX_SAFE_INTEGER),
  'reneg-pkts': integer('renegPkts', 'packets', 0, Number.MAX_SAFE_INTEGER),
  'hand-window': integer('handWindow', 'seconds', 0, MAX_SECONDS),
  'tran-window': integer('tranWindow', 'seconds', 0, MAX_SECONDS),

  // data channel
  auth: {
    min: 1,
    max: 1,
    set(ctx, _d, [a]) {
      ctx.o.auth = a as string;
    },
  },
  cipher: {
    min: 1,
    max: 1,
    set(ctx, _d, [c]) {
      ctx.o.cipher = c as string;
    },
  },
  'data-ciphers': {
    min: 1,
    max: 1,
    set(ctx, d, [l]) {
      ctx.o.dataCiphers = cipherList(d, l as string);
    },
  },
  'ncp-ciphers': {
    min: 1,
    max: 1,
    set(ctx, d, [l]) {
      ctx.o.dataCiphers = cipherList(d, l as string);
      ctx.warn(d, 'ncp-ciphers is treated as data-ciphers (renamed in OpenVPN 2.5)');
    },
  },
  'data-ciphers-fallback': {
    min: 1,
    max: 1,
    set(ctx, _d, [c]) {
      ctx.o.dataCiphersFallback = c as string;
    },
  },
  'replay-window': {
    min: 1,
    max: 2,
    set(ctx, d, [n, t]) {
      ctx.o.replayWindow = int(d, n as string, 'window size', 0, 65536);
      if (t !== undefined) ctx.o.replayTime = int(d, t, 'time window', 0, 600);
    },
  },
  'no-replay': {
    min: 0,
    max: 0,
    set(ctx, d) {
      ctx.o.noReplay = true;
      ctx.unsupported(d, 'no-replay is not supported: AEAD data channels always check replays');
    },
  },
  'mute-replay-warnings': {
    min: 0,
    max: 0,
    set(ctx, d) {
      ctx.warn(d, 'mute-replay-warnings is ignored');
    },
  },
  'peer-id': integer('peerId', 'peer-id', 0, 0xfffffe),

  // client credentials
  'auth-user-pass': {
    min: 0,
    max: 1,
    inline: true,
    set(ctx, d) {
      ctx.o.authUserPass = d.inline === undefined && d.args.length === 0 ? { kind: 'stdin' } : ctx.fileRef(d);
    },
  },
  'auth-nocache': flag('authNocache'),
  'auth-retry': {
    min: 1,
    max: 1,
    set(ctx, d, [m]) {
      ctx.o.authRetry = oneOf(d, m as string, 'mode', ['none', 'nointeract', 'interact'] as const);
    },
  },
};

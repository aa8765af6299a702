// What server and client mode both refuse before a run starts, with the line of the config
// that asked for it.
import { ConfigError, failOption as fail, type Options } from '../shared/config';
import { framingKind, type FramingKind } from '../shared/protocol/compress-framing';
import { cipherUnavailable, digestLength, isCbcCipher, type DataCipherName } from '../shared/protocol/data-format';
import { DATA_CIPHERS, dataCipherName, parseDataCiphers } from '../shared/protocol/ncp';

/** An OpenVPN option the config parser accepted but shardvpn does not run: the first one fails the start. */
export function refuseUnsupported(options: Options): void {
  const unsupported = options.unsupported[0];
  if (unsupported !== undefined) throw new ConfigError(unsupported, unsupported.directive, unsupported.message);
}

/** The data ciphers this process can run (BF-CBC only with OpenSSL's legacy provider). */
function runnableCiphers(): DataCipherName[] {
  return DATA_CIPHERS.filter((c) => cipherUnavailable(c) === null);
}

/** `auth` as the digest the CBC data channel uses: OpenVPN's SHA1 by default, null for `auth none`. */
export function authDigest(options: Options): string | null {
  if (options.auth === undefined) return 'SHA1';
  return options.auth.toLowerCase() === 'none' ? null : options.auth.toUpperCase();
}

export interface DataChannelSettings {
  /** --data-ciphers, normalised, `?optional` names this process cannot run dropped (mutate_ncp_cipher_list). */
  readonly ciphers: DataCipherName[];
  readonly fallback: DataCipherName | null;
  /** The CBC ciphers' HMAC digest. */
  readonly auth: string | null;
}

/** --data-ciphers, --data-ciphers-fallback and --auth as the data channel runs them; any other name fails the start. */
export function dataChannelSettings(options: Options): DataChannelSettings {
  const runnable = runnableCiphers();
  const parsed = parseDataCiphers(options.dataCiphers.join(':'), runnable);
  if (!parsed.ok) {
    // A name shardvpn knows but this OpenSSL cannot run (BF-CBC) says why; others list what runs.
    const unavailable = options.dataCiphers
      .map((n) => dataCipherName(n.replace(/^\?/, '')))
      .find((c) => c !== null && !runnable.includes(c));
    fail(
      options,
      'data-ciphers',
      (unavailable ? cipherUnavailable(unavailable) : null) ?? `${parsed.detail} (shardvpn runs ${runnable.join(', ')})`,
    );
  }
  let fallback: DataCipherName | null = null;
  if (options.dataCiphersFallback !== undefined) {
    fallback = dataCipherName(options.dataCiphersFallback);
    if (fallback === null)
      fail(
        options,
        'data-ciphers-fallback',
        `cipher '${options.dataCiphersFallback}' is not supported (shardvpn runs ${runnable.join(', ')})`,
      );
    const why = cipherUnavailable(fallback);
    if (why !== null) fail(options, 'data-ciphers-fallback', why);
  }
  const ciphers = parsed.ciphers as DataCipherName[];
  const auth = authDigest(options);
  if ([...ciphers, fallback].some((c) => c !== null && isCbcCipher(c))) {
    try {
      digestLength(auth);
    } catch (error) {
      fail(options, 'auth', (error as Error).message);
    }
  }
  return { ciphers, fallback, auth };
}

/**
 * The compression framing comp-lzo / compress put on data payloads. shardvpn sends uncompressed
 * (2.6's default) in the peer's framing and drops compressed payloads; `compress migrate`, which
 * changes a client's framing mid-push, is refused.
 */
export function compressionFraming(options: Options): FramingKind {
  const kind = framingKind(options.compression.framing);
  if (kind === null)
    fail(options, 'compress', "'compress migrate' is not supported by shardvpn; remove compression from the server and its clients");
  return kind;
}

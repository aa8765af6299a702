// Configuration, host interface and events of a ControlSession.

import type { WrapConfig } from './control-wrap';
import type { VerifyX509Name } from './peer-verify';

export type SessionRole = 'client' | 'server';

/** What the host gives the session: a way out, a way to report, and the clock (ms). */
export interface SessionHost {
  /** One wire datagram for the peer (UDP payload; the host adds TCP framing if any). */
  sendPacket(wire: Buffer): void;
  onEvent(event: SessionEvent): void;
  /** Monotonic milliseconds; every timer in the session is measured on this clock. */
  now(): number;
}

export interface TlsMaterial {
  /**
   * PEM strings. A client that logs in with auth-user-pass alone has no cert and key. `ca` is ''
   * when peer-fingerprint alone decides whom to trust (no CA: no chain to check).
   */
  readonly ca: string;
  /** --peer-fingerprint: SHA256 fingerprints ("AB:CD:..."), one of which the peer's certificate must have. */
  readonly peerFingerprints?: readonly string[];
  readonly cert?: string;
  readonly key?: string;
  /** --crl-verify (PEM CRL); revoked peers fail the handshake's verification. */
  readonly crl?: string;
  /**
   * --crl-verify FILE: where `crl` was read from and the file's stat then; a session re-reads
   * the file when it has changed (prepared-tls.ts).
   */
  readonly crlFile?: { readonly path: string; readonly mtimeMs: number; readonly size: number };
  /** --crl-verify DIR dir: a file named by a peer's decimal serial number revokes it. */
  readonly crlDir?: string;
  /** --tls-version-min, default TLSv1.2. */
  readonly minVersion?: 'TLSv1.2' | 'TLSv1.3';
  /** --dh FILE (a server's): PEM DH parameters, for TLS 1.2's DHE suites; absent: ECDHE only (dh none). */
  readonly dh?: string;
  /** --tls-version-max; absent: the highest the TLS library has. */
  readonly maxVersion?: 'TLSv1.2' | 'TLSv1.3';
  /** --tls-cipher / --tls-ciphersuites in OpenSSL spelling. */
  readonly ciphers?: string;
  readonly ciphersuites?: string;
  /** --tls-groups / --ecdh-curve: key exchange groups, colon-separated (OpenSSL names). */
  readonly groups?: string;
}

export interface KeyMethod2Content {
  /** OCC options string ("V4,dev-type tun,...,tls-client"). */
  readonly options: string;
  /** IV_* lines; null: absent (a p2mp server sends none). */
  readonly peerInfo: string | null;
  /** Client only (auth-user-pass). */
  readonly username?: string | null;
  readonly password?: string | null;
}

export interface SessionTiming {
  /** --hand-window, default 60 s: each key must reach its keys within this. */
  readonly handWindowMs?: number;
  /** --tls-timeout, default 2 s: first retransmission interval. */
  readonly tlsTimeoutMs?: number;
  /** --reneg-sec, default 3600 s; 0 disables time-based renegotiation. */
  readonly renegMs?: number;
  /**
   * --reneg-sec's second number: each key renegotiates after a random time in [min, max]. Absent:
   * a server picks in [0.9, 1] x max, a client uses max.
   */
  readonly renegMinMs?: number;
  /** --tran-window, default 3600 s: how long the old key stays after a renegotiation. */
  readonly tranWindowMs?: number;
}

/**
 * tls-ekm: RFC 5705 export; prf: the TLS 1.0 PRF over key method 2 randoms.
 * auto: server picks tls-ekm iff the client's IV_PROTO has the TLS_KEY_EXPORT bit; a client
 * waits for setKeyDerivation() (the pushed key-derivation / protocol-flags decides).
 */
export type KeyDerivationMethod = 'tls-ekm' | 'prf';

/** The server's state after the stateless cookie exchange (StatelessResponder 'create'). */
export interface StatelessStart {
  /** Our session id: the cookie. */
  readonly ownSessionId: Buffer;
  readonly peerSessionId: Buffer;
  /** tls-crypt-v2: the client's Kc taken from its WKc. */
  readonly tlsCryptV2ClientKey?: Buffer;
}

/** --verify-hash's fingerprints and their digest. */
export interface VerifyHash {
  readonly algo: 'sha1' | 'sha256';
  readonly hashes: readonly string[];
}

/** The checks of the peer's certificate a config asks for (peer-verify.ts peerChecks() copies them). */
export interface PeerChecks {
  /** --remote-cert-tls (client: usually 'server'; server: 'client' if configured). */
  readonly remoteCertTls?: 'server' | 'client';
  /** --verify-hash: the certificate above the peer's (its issuer) must have one of these fingerprints. */
  readonly verifyHash?: VerifyHash;
  /** --ns-cert-type (deprecated in OpenVPN, still honoured): OpenSSL's purpose check for this TLS role. */
  readonly nsCertType?: 'server' | 'client';
  /** --remote-cert-eku: an extended key usage (OID or OpenSSL name) the peer must have. */
  readonly remoteCertEku?: string;
  /** --remote-cert-ku: key usage values, one of which the peer's must include; [] only asks for the extension. */
  readonly remoteCertKu?: readonly number[];
  readonly verifyX509Name?: VerifyX509Name;
  /** --x509-username-field: the certificate fields that name the peer instead of its CN. */
  readonly x509UsernameField?: readonly string[];
}

export interface ControlSessionConfig extends PeerChecks {
  readonly role: SessionRole;
  readonly tls: TlsMaterial;
  readonly wrap: WrapConfig;
  readonly keyMethod2: KeyMethod2Content;
  /**
   * Server: --verify-client-cert. 'none': no certificate is asked for; 'optional': one that is
   * shown is verified, none is fine. A client without one is named UNDEF (username-as-common-name
   * names it after its login). Default 'require'.
   */
  readonly verifyClientCert?: 'none' | 'optional' | 'require';
  readonly timing?: SessionTiming;
  /** Default 'auto'. */
  readonly keyDerivation?: KeyDerivationMethod | 'auto';
  /** --max-packet-size / tls-mtu, default 1250. */
  readonly tlsMtu?: number;
  /** The peer is reached over IPv6 (frame overhead). */
  readonly ipv6?: boolean;
  /** Server created by a StatelessResponder. */
  readonly stateless?: StatelessStart;
  /** Own session id (tests); random otherwise. */
  readonly sessionId?: Buffer;
  /** Over TCP: control messages are not retransmitted (the stream delivers or dies). */
  readonly stream?: boolean;
}

export type SessionErrorReason =
  'tls-error' | 'cert-rejected' | 'handshake-timeout' | 'bad-key-method-2' | 'replay-exhausted' | 'key-state-error';

export type DropReason =
  | 'parse'
  | 'bad-hmac'
  | 'replay'
  | 'bad-wkc'
  | 'wrong-session'
  | 'wrong-direction'
  | 'wrong-key-id'
  | 'bad-hard-reset'
  | 'out-of-window'
  | 'closed';

export type SessionEvent =
  /** Peer certificate accepted (chain, CRL, EKU, verify-x509-name). */
  | {
      readonly type: 'tls-verified';
      readonly keyId: number;
      readonly commonName: string;
      readonly subject: string;
      /** The peer certificate's serial number, hex as X509Certificate gives it. */
      readonly serialNumber: string;
      readonly protocol: string;
      readonly cipher: string;
    }
  /** Peer's key method 2 message. Server: decide on auth; send AUTH_FAILED via sendControlMessage if refused. */
  | {
      readonly type: 'key-method-2';
      readonly keyId: number;
      readonly options: string;
      readonly peerInfo: string | null;
      readonly username: string | null;
      readonly password: string | null;
      readonly userPassTooLong: boolean;
    }
  /**
   * Data channel key material for keyId: the 256-byte block (slice with sliceAeadKeys(block,
   * role, keyLen)). A renegotiated key is announced here too; the previous one stays valid
   * until 'key-retired'.
   */
  | { readonly type: 'keys'; readonly keyId: number; readonly method: KeyDerivationMethod; readonly keyBlock: Buffer }
  /**
   * The peer has keyId's data keys too, so a host may send on it (OpenVPN's S_ACTIVE): for a
   * client at once after 'keys' (the server derived its keys before its key method 2 reply);
   * for a server once the client has acknowledged every packet of that reply.
   */
  | { readonly type: 'key-active'; readonly keyId: number }
  /** A control-channel text message (NUL and trailing CR/LF removed). */
  | { readonly type: 'control-message'; readonly keyId: number; readonly text: string }
  /** A renegotiation started (initiated by us or the peer). */
  | { readonly type: 'renegotiating'; readonly keyId: number; readonly initiatedBy: 'local' | 'peer' }
  /** The old key reached the end of the transition window (or a newer one replaced it). */
  | { readonly type: 'key-retired'; readonly keyId: number }
  /** fatal: the session is unusable (the host closes it; for renegotiations the old key stays). */
  | {
      readonly type: 'error';
      readonly reason: SessionErrorReason;
      readonly fatal: boolean;
      readonly keyId: number;
      readonly detail: string;
    }
  /** A packet was ignored (counted by the host, not fatal). */
  | { readonly type: 'drop'; readonly reason: DropReason; readonly detail: string }
  | { readonly type: 'closed' };

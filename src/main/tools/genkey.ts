// `shardvpn --genkey TYPE [FILE]`: key files in the formats openvpn 2.6 writes and reads
// (secret / tls-auth / tls-crypt static keys, tls-crypt-v2 server and client keys, the
// auth-gen-token-secret key).
import { readFileSync, writeFileSync } from 'node:fs';

import {
  formatStaticKey,
  formatTlsCryptV2ClientKey,
  formatTlsCryptV2ServerKey,
  generateStaticKey,
  generateTlsCryptV2ServerKey,
  parseTlsCryptV2ServerKey,
} from '../../shared/protocol/static-key';
import { generateTlsCryptV2ClientKey } from '../../shared/protocol/tls-crypt';
import { generateAuthTokenSecretText } from '../../shared/protocol/auth-token';

export const GENKEY_TYPES = ['secret', 'tls-auth', 'tls-crypt', 'tls-crypt-v2-server', 'tls-crypt-v2-client', 'auth-token'] as const;
export type GenkeyType = (typeof GENKEY_TYPES)[number];

export interface GenkeyRequest {
  type: GenkeyType;
  /** Absent: write to stdout. */
  file?: string;
  /** tls-crypt-v2-client: the server key file (--tls-crypt-v2 FILE). */
  serverKeyFile?: string;
  /** tls-crypt-v2-client: base64 user metadata. */
  metadata?: string;
}

export type GenkeyParse = { ok: true; request: GenkeyRequest } | { ok: false; reason: string };

/** Reads `--genkey TYPE [FILE [METADATA]]`, the 2.4 spelling `--genkey --secret FILE`, and `--tls-crypt-v2 FILE`. */
export function parseGenkeyArgs(argv: readonly string[]): GenkeyParse {
  const at = argv.indexOf('--genkey');
  if (at < 0) return { ok: false, reason: 'no --genkey' };
  const words: string[] = [];
  for (let i = at + 1; i < argv.length && !argv[i]!.startsWith('--'); i++) words.push(argv[i]!);
  const secretAt = argv.indexOf('--secret');
  if (words.length === 0 && secretAt >= 0) {
    words.push('secret');
    const f = argv[secretAt + 1];
    if (f !== undefined && !f.startsWith('--')) words.push(f);
  }
  const type = (words[0] ?? 'secret') as GenkeyType;
  if (!GENKEY_TYPES.includes(type)) return { ok: false, reason: `--genkey: unknown key type '${words[0]}' (${GENKEY_TYPES.join(', ')})` };
  const request: GenkeyRequest = { type };
  if (words[1] !== undefined) request.file = words[1];
  if (words[2] !== undefined) request.metadata = words[2];
  if (type === 'tls-crypt-v2-client') {
    const v2 = argv.indexOf('--tls-crypt-v2');
    const f = v2 >= 0 ? argv[v2 + 1] : undefined;
    if (f === undefined || f.startsWith('--'))
      return { ok: false, reason: '--genkey tls-crypt-v2-client needs --tls-crypt-v2 SERVERKEY (the server key wraps the client key)' };
    request.serverKeyFile = f;
  }
  return { ok: true, request };
}

/** The key file text for a request. */
export function generateKeyText(request: GenkeyRequest): string {
  switch (request.type) {
    case 'secret':
    case 'tls-auth':
    case 'tls-crypt':
      return formatStaticKey(generateStaticKey());
    case 'tls-crypt-v2-server':
      return formatTlsCryptV2ServerKey(generateTlsCryptV2ServerKey());
    case 'auth-token':
      return generateAuthTokenSecretText();
    case 'tls-crypt-v2-client': {
      const file = request.serverKeyFile!;
      const serverKey = parseTlsCryptV2ServerKey(readFileSync(file, 'utf8'), file);
      const userMetadata = request.metadata !== undefined ? Buffer.from(request.metadata, 'base64') : undefined;
      return formatTlsCryptV2ClientKey(generateTlsCryptV2ClientKey(serverKey, userMetadata !== undefined ? { userMetadata } : {}));
    }
  }
}

/** Runs the tool; returns the exit status. */
export function runGenkey(argv: readonly string[]): number {
  const parsed = parseGenkeyArgs(argv);
  if (!parsed.ok) {
    process.stderr.write(`Options error: ${parsed.reason}\n`);
    return 1;
  }
  let text: string;
  try {
    text = generateKeyText(parsed.request);
  } catch (error) {
    process.stderr.write(`shardvpn --genkey: ${(error as Error).message}\n`);
    return 1;
  }
  if (parsed.request.file === undefined) {
    process.stdout.write(text);
    return 0;
  }
  try {
    writeFileSync(parsed.request.file, text, { mode: 0o600 });
  } catch (error) {
    process.stderr.write(
      `shardvpn --genkey: cannot write ${parsed.request.file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}\n`,
    );
    return 1;
  }
  return 0;
}

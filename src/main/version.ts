// The version banner, as `--version`, the status file's TITLE and the management interface show it.
import { readFileSync } from 'node:fs';
import path from 'node:path';

function packageVersion(): string {
  const file = path.join(__dirname, '..', '..', '..', 'package.json');
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}

export const VERSION = packageVersion();
export const VERSION_BANNER = `shardvpn ${VERSION} ${process.arch === 'x64' ? 'x86_64' : process.arch}-pc-linux-gnu [SSL (OpenSSL)] [AEAD] [node ${process.versions.node}]`;

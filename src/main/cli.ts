// The `shardvpn` command line: OpenVPN's flags where OpenVPN has them.
import { readFileSync } from 'node:fs';
import path from 'node:path';

const USAGE = `Usage: shardvpn [options]

  --help                 show this text
  --version              show the version and the OpenSSL/Node versions in use

shardvpn is an OpenVPN 2.6 compatible VPN server and client whose event loop is spread over
worker threads. See README.md.`;

function packageVersion(): string {
  const file = path.join(__dirname, '..', '..', '..', 'package.json');
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}

export function main(argv: readonly string[]): void {
  if (argv.includes('--version')) {
    console.log(`shardvpn ${packageVersion()} node ${process.versions.node} [SSL (OpenSSL ${process.versions.openssl})] [AEAD]`);
    return;
  }
  if (argv.length === 0 || argv.includes('--help')) {
    console.log(USAGE);
    return;
  }
  console.error(`shardvpn: unrecognized option or missing parameter(s): ${argv[0]}\nUse --help for more information.`);
  process.exitCode = 1;
}

// argv -> directives, as options.c parse_argv reads a command line: `--name arg arg --other`.

import { ConfigError } from './errors';
import { Directive, ParseOptions, newReadContext, pushDirective } from './lexer';

/** `file` of every directive that came from the command line. */
export const ARGV_FILE = 'argv';

/**
 * Parse the arguments after the program name. Each directive's `line` is the 1-based position
 * of its `--name` in `argv`. `--config FILE` is read in place, so a later argument overrides
 * what the file set, and `--cd DIR` moves the base of later relative paths, as in OpenVPN.
 * A single argument without `--` is a config file name (`openvpn server.conf`).
 */
export function parseArgv(argv: readonly string[], opts?: ParseOptions): Directive[] {
  const ctx = newReadContext(opts);
  const out: Directive[] = [];
  if (argv.length === 1 && !(argv[0] as string).startsWith('--')) {
    pushDirective({ name: 'config', args: [argv[0] as string], file: ARGV_FILE, line: 1 }, ctx, out, true);
    return out;
  }
  let i = 0;
  while (i < argv.length) {
    const word = argv[i] as string;
    const pos = { file: ARGV_FILE, line: i + 1 };
    if (!word.startsWith('--')) {
      throw new ConfigError(pos, undefined, `'${word}' is not an option: options start with '--'`);
    }
    const args: string[] = [];
    let j = i + 1;
    while (j < argv.length && !(argv[j] as string).startsWith('--')) args.push(argv[j++] as string);
    pushDirective({ name: word.slice(2), args, ...pos }, ctx, out, true);
    i = j;
  }
  return out;
}

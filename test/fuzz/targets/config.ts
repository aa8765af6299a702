// Config files (src/shared/config): the lexer (quoting, comments, inline <blocks>, <connection>)
// and the directive table that turns directives into Options, from a file's text and from argv.
// A mistake is refused with a ConfigError naming file:line; nothing else may escape. No file is
// read: includes are off and relative names resolve in a directory that does not exist.
import { ConfigError, buildOptions, parseArgv, parseConfigText } from '../../../src/shared/config';
import { refusing } from '../finding';

const CWD = '/nonexistent/shardvpn-fuzz';
const isConfigError = (e: unknown): boolean => e instanceof ConfigError;

export function fuzz(data: Buffer): void {
  const text = data.toString('utf8');
  const directives = refusing(() => parseConfigText(text, 'fuzz.conf', { expandIncludes: false, cwd: CWD }), isConfigError);
  if (directives !== undefined) refusing(() => buildOptions(directives, { cwd: CWD }), isConfigError);
  // The same bytes as a command line: NUL-separated arguments.
  const argv = text.split('\0');
  const fromArgv = refusing(() => parseArgv(argv, { expandIncludes: false, cwd: CWD }), isConfigError);
  if (fromArgv !== undefined) refusing(() => buildOptions(fromArgv, { cwd: CWD }), isConfigError);
}

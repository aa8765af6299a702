// The config module's surface: text/file/argv -> directives -> typed Options.

export { ConfigError, failOption, optionError } from './errors';
export type { ConfigWarning, Positions, SourcePos } from './errors';
export { parseConfigFile, parseConfigText, tokenizeLine } from './lexer';
export type { Directive, ParseOptions } from './lexer';
export { parseArgv, ARGV_FILE } from './argv';
export { buildOptions } from './options';
export type { BuildOptionsOptions, BuildResult } from './options';
export { defaultOptions } from './options-types';
export type * from './options-types';

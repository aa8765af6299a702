// ConfigError: a config mistake a person must fix, always naming where it is.

export interface SourcePos {
  readonly file: string;
  readonly line: number;
}

export class ConfigError extends Error {
  readonly file: string;
  readonly line: number;
  readonly directive: string | undefined;
  readonly detail: string;

  /** Message reads `file:line: directive: detail`, or `file:line: detail` without a directive. */
  constructor(pos: SourcePos, directive: string | undefined, detail: string) {
    super(`${pos.file}:${pos.line}: ${directive !== undefined ? `${directive}: ` : ''}${detail}`);
    this.name = 'ConfigError';
    this.file = pos.file;
    this.line = pos.line;
    this.directive = directive;
    this.detail = detail;
  }
}

/** A note for the operator: accepted, but shardvpn treats it differently from OpenVPN or ignores it. */
export interface ConfigWarning {
  readonly file: string;
  readonly line: number;
  readonly message: string;
}

/** What optionError needs of Options: where each directive was given, and the top-level file. */
export interface Positions {
  readonly positions: Readonly<Record<string, SourcePos>>;
  readonly source: string;
}

/**
 * A ConfigError for a check made after parsing, at the line that gave `directive` (the last
 * one, as the last one wins); a directive never given is reported against the top-level file.
 */
export function optionError(options: Positions, directive: string, detail: string): ConfigError {
  return new ConfigError(options.positions[directive] ?? { file: options.source, line: 0 }, directive, detail);
}

/** Throws optionError: for checks that stop at the first mistake. */
export function failOption(options: Positions, directive: string, detail: string): never {
  throw optionError(options, directive, detail);
}

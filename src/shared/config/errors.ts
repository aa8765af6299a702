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

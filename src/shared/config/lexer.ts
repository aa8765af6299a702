// OpenVPN config-file syntax -> a flat list of directives, as options.c parse_line and
// read_config_file read it: one directive a line, `<tag>` inline blocks, `config FILE` includes.
// Include paths resolve against the working directory (changed by `cd`), as OpenVPN's do.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError, SourcePos } from './errors';

export interface Directive {
  readonly name: string;
  readonly args: readonly string[];
  readonly file: string;
  readonly line: number;
  /** Text of an inline block `<name>...</name>`, each line ending in '\n'. */
  readonly inline?: string;
  /** The directives inside a `<connection>` block, with their real line numbers. */
  readonly block?: readonly Directive[];
}

export type LineTokens = { ok: true; tokens: string[] } | { ok: false; reason: string };

/** OpenVPN's MAX_PARMS: the directive name plus 15 parameters. */
const MAX_TOKENS = 16;
/** OpenVPN's max_recursive_levels for `config` includes. */
const MAX_INCLUDE_DEPTH = 10;

const enum State {
  Initial,
  Unquoted,
  Quoted,
  SingleQuoted,
  Done,
}

function isSpace(ch: string): boolean {
  return ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r' || ch === '\v' || ch === '\f' || ch === '\0';
}

/**
 * Split one line the way parse_line does: `#` and `;` start a comment only where a token
 * would start; "double quotes" honour backslash escapes of `\`, `"` and whitespace;
 * 'single quotes' are literal; outside single quotes a backslash may only escape `\`, `"`
 * or whitespace. A closing quote ends the token even without whitespace after it.
 */
export function tokenizeLine(line: string): LineTokens {
  const tokens: string[] = [];
  let state = State.Initial;
  let backslash = false;
  let parm = '';
  // The loop visits a final '\0' as parse_line does, which ends an unquoted token.
  for (let i = 0; i <= line.length; i++) {
    const ch = i < line.length ? (line[i] as string) : '\0';
    let out = '';
    if (!backslash && ch === '\\' && state !== State.SingleQuoted) {
      backslash = true;
    } else {
      if (state === State.Initial) {
        if (!isSpace(ch)) {
          if (ch === ';' || ch === '#') break;
          if (!backslash && ch === '"') state = State.Quoted;
          else if (!backslash && ch === "'") state = State.SingleQuoted;
          else {
            out = ch;
            state = State.Unquoted;
          }
        }
      } else if (state === State.Unquoted) {
        if (!backslash && isSpace(ch)) state = State.Done;
        else out = ch;
      } else if (state === State.Quoted) {
        if (!backslash && ch === '"') state = State.Done;
        else out = ch;
      } else if (state === State.SingleQuoted) {
        if (ch === "'") state = State.Done;
        else out = ch;
      }
      if (state === State.Done) {
        tokens.push(parm);
        parm = '';
        state = State.Initial;
      }
      if (backslash && out !== '' && out !== '\0' && !(out === '\\' || out === '"' || isSpace(out))) {
        return {
          ok: false,
          reason:
            `bad backslash ('\\${out}'): a backslash may only escape '\\', '"' or a space; ` +
            'write a Windows path with double backslashes ("c:\\\\dir\\\\file")',
        };
      }
      backslash = false;
    }
    if (out !== '' && out !== '\0') parm += out;
  }
  if (state === State.Quoted) return { ok: false, reason: 'unterminated quote: no closing quotation (")' };
  if (state === State.SingleQuoted) return { ok: false, reason: "unterminated quote: no closing single quotation (')" };
  if (state !== State.Initial) return { ok: false, reason: 'backslash at end of line' };
  // OpenVPN drops what follows the 16th token without a word; we say so.
  if (tokens.length > MAX_TOKENS) return { ok: false, reason: `too many parameters (at most ${MAX_TOKENS - 1})` };
  return { ok: true, tokens };
}

/** Where includes are read from: OpenVPN's process working directory, moved by `cd`. */
export interface ReadContext {
  cwd: string;
  /** Real paths of the files being read, outermost first, for loop detection. */
  readonly stack: string[];
  /** false: leave `config` and `cd` as plain directives and read no file. */
  readonly expandIncludes: boolean;
}

export interface ParseOptions {
  /** The directory relative paths start from; default process.cwd(). */
  readonly cwd?: string;
  /** Read `config FILE` includes (default true). */
  readonly expandIncludes?: boolean;
}

export function newReadContext(opts: ParseOptions | undefined): ReadContext {
  return { cwd: path.resolve(opts?.cwd ?? process.cwd()), stack: [], expandIncludes: opts?.expandIncludes ?? true };
}

/** Parse config text. `file` names it in errors; includes are read as `opts` says. */
export function parseConfigText(text: string, file: string, opts?: ParseOptions): Directive[] {
  return readText(text, file, newReadContext(opts));
}

/** Read and parse a config file, following its `config` includes. */
export function parseConfigFile(file: string, opts?: ParseOptions): Directive[] {
  const ctx = newReadContext(opts);
  const out: Directive[] = [];
  includeFile(file, { file: file, line: 0 }, ctx, out);
  return out;
}

/** Read `file` (as written in a `config` directive) and append its directives to `out`. */
export function includeFile(file: string, at: SourcePos, ctx: ReadContext, out: Directive[]): void {
  const full = path.resolve(ctx.cwd, file);
  if (ctx.stack.length >= MAX_INCLUDE_DEPTH) {
    throw new ConfigError(at, 'config', `too many nested includes (at most ${MAX_INCLUDE_DEPTH}) reading '${file}'`);
  }
  let text: string;
  let real: string;
  try {
    real = fs.realpathSync(full);
    text = fs.readFileSync(real, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new ConfigError(at, 'config', `cannot read configuration file '${file}' (${full}): ${code}`);
  }
  const loopAt = ctx.stack.indexOf(real);
  if (loopAt >= 0) {
    const chain = [...ctx.stack.slice(loopAt), real].join(' -> ');
    throw new ConfigError(at, 'config', `include loop: ${chain}`);
  }
  ctx.stack.push(real);
  try {
    out.push(...readText(text, file, ctx));
  } finally {
    ctx.stack.pop();
  }
}

function readText(text: string, file: string, ctx: ReadContext): Directive[] {
  const lines = text.split('\n');
  if (lines.length > 0 && (lines[0] as string).charCodeAt(0) === 0xfeff) {
    lines[0] = (lines[0] as string).slice(1);
  }
  // A trailing newline leaves one empty string behind; it is no line.
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  const out: Directive[] = [];
  readLines(lines.map(stripCR), 0, lines.length, 1, file, ctx, out, true);
  return out;
}

function stripCR(line: string): string {
  return line.endsWith('\r') ? line.slice(0, -1) : line;
}

/** Parse lines[from, to); `firstLine` is the 1-based number of lines[from]. */
function readLines(
  lines: readonly string[],
  from: number,
  to: number,
  firstLine: number,
  file: string,
  ctx: ReadContext,
  out: Directive[],
  topLevel: boolean,
): void {
  for (let i = from; i < to; i++) {
    const lineNo = firstLine + (i - from);
    const pos = { file, line: lineNo };
    const r = tokenizeLine(lines[i] as string);
    if (!r.ok) throw new ConfigError(pos, undefined, r.reason);
    if (r.tokens.length === 0) continue;
    let name = r.tokens[0] as string;
    // A config file may spell directives like argv does: `--dev tun`.
    if (name.length >= 3 && name.startsWith('--')) name = name.slice(2);
    const args = r.tokens.slice(1);

    if (args.length === 0 && name.length >= 2 && name.startsWith('<') && name.endsWith('>')) {
      const tag = name.slice(1, -1);
      if (tag.startsWith('/')) {
        throw new ConfigError(pos, tag.slice(1), `closing tag ${name} without an opening <${tag.slice(1)}>`);
      }
      const close = `</${tag}>`;
      let end = i + 1;
      while (end < to && !(lines[end] as string).trimStart().startsWith(close)) end++;
      if (end >= to) throw new ConfigError(pos, tag, `inline block <${tag}> is not closed (no ${close})`);
      const body = lines.slice(i + 1, end);
      const inline = body.map((l) => l + '\n').join('');
      if (tag === 'connection') {
        const block: Directive[] = [];
        // Inside a block nothing is included: OpenVPN allows only connection options there.
        readLines(lines, i + 1, end, lineNo + 1, file, { ...ctx, expandIncludes: false }, block, false);
        out.push({ name: tag, args: [], file, line: lineNo, inline, block });
      } else {
        out.push({ name: tag, args: [], file, line: lineNo, inline });
      }
      i = end;
      continue;
    }
    pushDirective({ name, args, file, line: lineNo }, ctx, out, topLevel);
  }
}

/** Append a directive, acting on `config` (read the file) and `cd` (move the include base). */
export function pushDirective(d: Directive, ctx: ReadContext, out: Directive[], topLevel: boolean): void {
  if (ctx.expandIncludes && topLevel) {
    if (d.name === 'config') {
      if (d.args.length !== 1) {
        throw new ConfigError(d, 'config', `expects 1 argument (a file name), got ${d.args.length}`);
      }
      includeFile(d.args[0] as string, d, ctx, out);
      return;
    }
    if (d.name === 'cd' && d.args.length === 1) {
      const dir = path.resolve(ctx.cwd, d.args[0] as string);
      let isDir;
      try {
        isDir = fs.statSync(dir).isDirectory();
      } catch {
        isDir = false;
      }
      if (!isDir) throw new ConfigError(d, 'cd', `cannot change directory to '${d.args[0] as string}' (${dir})`);
      ctx.cwd = dir;
    }
  }
  out.push(d);
}

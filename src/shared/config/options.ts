// Directives -> typed Options, in order (a later directive wins where OpenVPN's does), then
// OpenVPN's post-processing. Relative file names resolve against the working directory as
// moved by the last `cd`, since OpenVPN opens those files only after reading every option.

import * as path from 'node:path';
import { directiveTable } from './directives';
import { ConfigError, ConfigWarning } from './errors';
import { postprocess, snapshotConnection } from './helper';
import { Directive } from './lexer';
import { ConnectionEntry, FileRef, Options, PathRef, Where, defaultOptions } from './options-types';
import { BuildContext } from './registry';

export interface BuildOptionsOptions {
  /** The process working directory relative names start from; default process.cwd(). */
  readonly cwd?: string;
}

export interface BuildResult {
  readonly options: Options;
  readonly warnings: ConfigWarning[];
}

/** Directives OpenVPN 2.6 no longer has, with what to write instead. */
const REMOVED: Readonly<Record<string, string>> = {
  'tls-remote': 'removed in OpenVPN 2.4; use verify-x509-name',
  'client-cert-not-required': "removed in OpenVPN 2.5; use 'verify-client-cert none'",
  'key-method': 'removed in OpenVPN 2.6 (key method 2 is the only one)',
  'ncp-disable': 'removed in OpenVPN 2.6; set data-ciphers instead',
  'no-iv': 'removed in OpenVPN 2.5',
  keysize: 'removed in OpenVPN 2.6; choose a cipher with the key size you want',
  'ifconfig-pool-linear': "removed in OpenVPN 2.5; use 'topology p2p'",
  'mtu-dynamic': 'replaced by fragment',
};

export function buildOptions(directives: readonly Directive[], opts?: BuildOptionsOptions): BuildResult {
  const o = defaultOptions();
  const warnings: ConfigWarning[] = [];
  const seen = new Map<string, Where>();
  const blocks: ConnectionEntry[] = [];
  // Relative names wait here until the last `cd` is known.
  const relative: Array<{ ref: { resolved: string }; path: string }> = [];
  let cwd = path.resolve(opts?.cwd ?? process.cwd());
  // `ca [inline]` (a 2.4-era spelling) names no file; a later <ca> block must replace it.
  const pendingInline = new Map<string, Directive>();

  const warn = (at: Where, message: string): void => {
    warnings.push({ file: at.file, line: at.line, message });
  };
  const base = {
    o,
    warn,
    unsupported(d: Directive, message: string): void {
      o.unsupported.push({ file: d.file, line: d.line, directive: d.name, message });
    },
    fileRef(d: Directive): FileRef {
      if (d.inline !== undefined) {
        pendingInline.delete(d.name);
        return { kind: 'inline', text: d.inline, file: d.file, line: d.line };
      }
      const p = d.args[0] as string;
      if (p === '[inline]') pendingInline.set(d.name, d);
      else pendingInline.delete(d.name);
      const ref: FileRef = { kind: 'file', path: p, resolved: p, file: d.file, line: d.line };
      relative.push({ ref, path: p });
      return ref;
    },
    pathRef<T extends object>(_d: Directive, p: string, extra: T): PathRef & T {
      const ref = { ...extra, path: p, resolved: p };
      relative.push({ ref, path: p });
      return ref;
    },
  };
  const global: BuildContext = { ...base, ce: o, inConnection: false };

  const apply = (d: Directive, ctx: BuildContext): void => {
    let name = d.name;
    let args: readonly string[] = d.inline !== undefined ? [d.inline] : d.args;
    // `setenv opt X ...`: X is applied if known, and only warned about if not (add_option).
    let lenient = false;
    if (name === 'setenv' && args[0] === 'opt' && d.inline === undefined) {
      name = args[1] ?? 'setenv opt';
      args = args.slice(2);
      lenient = true;
    }
    const dd: Directive = name === d.name ? d : { ...d, name };
    seen.set(name, { file: d.file, line: d.line });

    if (name === 'config') {
      warn(d, `include of '${args[0] ?? ''}' was not read (includes are read by parseConfigFile/parseArgv)`);
      return;
    }
    if (name === 'connection') {
      if (ctx.inConnection) throw new ConfigError(d, name, 'a <connection> block cannot contain another');
      if (d.block === undefined) throw new ConfigError(d, name, 'must be an inline block <connection> ... </connection>');
      const entry = snapshotConnection(o, d);
      const inner: BuildContext = { ...base, ce: entry, inConnection: true };
      for (const b of d.block) apply(b, inner);
      if (entry.remote === undefined) throw new ConfigError(d, name, "each <connection> block must contain exactly one 'remote'");
      blocks.push(entry);
      return;
    }
    const removed = REMOVED[name];
    if (removed !== undefined && !lenient) throw new ConfigError(d, name, removed);
    const spec = directiveTable[name];
    if (spec === undefined) {
      if (lenient || o.ignoreUnknownOptions.includes(name) || o.setenv['FORWARD_COMPATIBLE'] === '1') {
        warn(d, `unknown directive '${name}' ignored`);
        return;
      }
      throw new ConfigError(d, undefined, `unknown directive '${name}'`);
    }
    if (ctx.inConnection && spec.connection !== true) {
      throw new ConfigError(d, name, 'cannot be used inside a <connection> block');
    }
    if (d.inline !== undefined && spec.inline !== true) {
      throw new ConfigError(d, name, `cannot be an inline block <${name}>`);
    }
    if (args.length < spec.min || args.length > spec.max) {
      const want = spec.min === spec.max ? `${spec.min}` : `${spec.min} to ${spec.max}`;
      const msg = `expects ${want} argument${spec.max === 1 ? '' : 's'}, got ${args.length}`;
      if (lenient) {
        warn(d, `${name}: ${msg}; ignored`);
        return;
      }
      throw new ConfigError(d, name, msg);
    }
    if (!ctx.inConnection && spec.connection === true && blocks.length > 0 && name !== 'remote') {
      warn(d, `${name} does not apply to the <connection> blocks above it`);
    }
    if (name === 'cd') cwd = path.resolve(cwd, args[0] as string);
    spec.set(ctx, dd, args);
  };

  for (const d of directives) apply(d, global);
  for (const [name, d] of pendingInline) {
    throw new ConfigError(d, name, `'[inline]' names no file, and no <${name}> block follows; add the block or name a file`);
  }

  if (directives[0] !== undefined) o.source = directives[0].file;
  postprocess(o, { seen, blocks, warn, source: o.source });
  o.positions = Object.fromEntries(seen);
  if (seen.has('cd')) o.cd = cwd;
  for (const r of relative) r.ref.resolved = path.resolve(cwd, r.path);
  return { options: o, warnings };
}

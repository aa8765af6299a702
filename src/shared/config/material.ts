// Reads key and certificate material named by the config (a file path or an inline block),
// with errors that name the config file, line and directive.
import { readFileSync } from 'node:fs';

import { ConfigError } from './errors';
import type { FileRef } from './options-types';

export function readMaterial(ref: FileRef, directive: string): string {
  if (ref.kind === 'inline') return ref.text;
  try {
    return readFileSync(ref.resolved, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new ConfigError({ file: ref.file, line: ref.line }, directive, `cannot read '${ref.path}' (${ref.resolved}): ${reason}`);
  }
}

/** Like readMaterial, then runs `parse`; a parse error is reported at the directive's position. */
export function parseMaterial<T>(ref: FileRef, directive: string, parse: (text: string, source: string) => T): T {
  const text = readMaterial(ref, directive);
  try {
    return parse(text, ref.kind === 'file' ? ref.path : `<${directive}> block`);
  } catch (error) {
    throw new ConfigError({ file: ref.file, line: ref.line }, directive, (error as Error).message);
  }
}

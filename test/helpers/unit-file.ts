// Reads a systemd unit file (systemd.syntax(7)) into sections of directives, so tests can check
// what a unit says by meaning rather than by comparing text: comments and blank lines skipped,
// backslash continuations joined, a directive that appears twice keeps both values in order.
import { readFileSync } from 'node:fs';

export type UnitFile = ReadonlyMap<string, ReadonlyMap<string, readonly string[]>>;

export function parseUnitFile(text: string): UnitFile {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | null = null;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let line = (lines[i] as string).trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    while (line.endsWith('\\') && i + 1 < lines.length) line = `${line.slice(0, -1)} ${(lines[++i] as string).trim()}`;
    const section = /^\[(.+)\]$/.exec(line);
    if (section !== null) {
      current = new Map();
      sections.set(section[1] as string, current);
      continue;
    }
    const eq = line.indexOf('=');
    if (current === null || eq <= 0) throw new Error(`line ${i + 1}: not a directive in a section: ${line}`);
    const key = line.slice(0, eq).trim();
    const values = current.get(key) ?? [];
    values.push(line.slice(eq + 1).trim());
    current.set(key, values);
  }
  return sections;
}

export function readUnitFile(file: string): UnitFile {
  return parseUnitFile(readFileSync(file, 'utf8'));
}

/** The one value of `key` in `section`; throws when it is absent or given more than once. */
export function unitValue(unit: UnitFile, section: string, key: string): string {
  const values = unit.get(section)?.get(key) ?? [];
  if (values.length !== 1) throw new Error(`[${section}] ${key}: expected one value, found ${values.length}`);
  return values[0] as string;
}

/** Every value of `key` in `section`, in order (empty when absent). */
export function unitValues(unit: UnitFile, section: string, key: string): readonly string[] {
  return unit.get(section)?.get(key) ?? [];
}

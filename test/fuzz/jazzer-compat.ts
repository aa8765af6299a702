// Loads Jazzer.js's libFuzzer addon on glibc older than the one its prebuilt was linked against.
//
// @jazzer.js/fuzzer 4.0.0 ships one prebuilt fuzzer-linux-x64.node, linked on a glibc 2.38 /
// GCC 13 system. Debian 12 has glibc 2.36 and GCC 12's libstdc++, so dlopen refuses it for three
// symbols: __isoc23_strtol and __isoc23_strtoul (glibc 2.38's C23 spellings of strtol/strtoul,
// which differ only in also reading a "0b" prefix; libFuzzer calls them to read its -flag=N
// arguments), and std::ios_base_library_init (GCC 13's marker that <iostream> was included; it has
// no relocation, so it is never looked up). Building the addon from source needs a patched LLVM
// tree fetched from GitHub at build time, so instead this file writes a copy of the prebuilt into
// build/fuzz/ whose dynamic symbol table asks for strtol/strtoul@GLIBC_2.2.5 and GLIBCXX_3.4, and
// makes Node load that copy when Jazzer asks for the prebuilt. The copy is made only when the
// prebuilt itself fails to load with a missing symbol version, so newer systems use it unchanged.
//
// Loaded with `node -r`, before Jazzer's CLI.

import fs from 'node:fs';
import path from 'node:path';

const PREBUILT = `fuzzer-${process.platform}-${process.arch}.node`;

/** Symbol versions the prebuilt needs -> the oldest version of the same library that has what it uses. */
const VERSION_FALLBACK: Readonly<Record<string, string>> = {
  'GLIBC_2.38': 'GLIBC_2.2.5',
  'GLIBCXX_3.4.32': 'GLIBCXX_3.4',
};
/** Symbols renamed to their pre-C23 equivalents (the new name is never longer, so it is written in place). */
const SYMBOL_FALLBACK: Readonly<Record<string, string>> = {
  __isoc23_strtol: 'strtol',
  __isoc23_strtoul: 'strtoul',
};

const SHT_DYNSYM = 11;
const SHT_GNU_VERNEED = 0x6ffffffe;

interface Section {
  type: number;
  offset: number;
  size: number;
  link: number;
  entsize: number;
}

function sections(elf: Buffer): Section[] {
  if (elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2 || elf[5] !== 1) throw new Error('not a little-endian ELF64 file');
  const shoff = Number(elf.readBigUInt64LE(0x28));
  const shentsize = elf.readUInt16LE(0x3a);
  const shnum = elf.readUInt16LE(0x3c);
  const out: Section[] = [];
  for (let i = 0; i < shnum; i++) {
    const o = shoff + i * shentsize;
    out.push({
      type: elf.readUInt32LE(o + 4),
      offset: Number(elf.readBigUInt64LE(o + 24)),
      size: Number(elf.readBigUInt64LE(o + 32)),
      link: elf.readUInt32LE(o + 40),
      entsize: Number(elf.readBigUInt64LE(o + 56)),
    });
  }
  return out;
}

function cString(elf: Buffer, at: number): string {
  return elf.toString('latin1', at, elf.indexOf(0, at));
}

/** The System V ELF hash that vna_hash holds. */
function elfHash(name: string): number {
  let h = 0;
  for (let i = 0; i < name.length; i++) {
    h = ((h << 4) + name.charCodeAt(i)) >>> 0;
    const g = h & 0xf0000000;
    if (g !== 0) h ^= g >>> 24;
    h = (h & ~g) >>> 0;
  }
  return h;
}

/** Rewrites the version needs and symbol names above; returns how many entries changed. */
export function patchSymbolVersions(elf: Buffer): number {
  const all = sections(elf);
  let changed = 0;
  const verneed = all.find((s) => s.type === SHT_GNU_VERNEED);
  if (verneed) {
    const strtab = all[verneed.link]!.offset;
    // First pass: where each version name already sits in .dynstr.
    const nameAt = new Map<string, number>();
    const aux: number[] = [];
    for (let vn = verneed.offset; ;) {
      const cnt = elf.readUInt16LE(vn + 2);
      for (let i = 0, a = vn + elf.readUInt32LE(vn + 8); i < cnt; i++) {
        const nameOff = elf.readUInt32LE(a + 8);
        nameAt.set(cString(elf, strtab + nameOff), nameOff);
        aux.push(a);
        a += elf.readUInt32LE(a + 12);
      }
      const next = elf.readUInt32LE(vn + 12);
      if (next === 0) break;
      vn += next;
    }
    for (const a of aux) {
      const fallback = VERSION_FALLBACK[cString(elf, strtab + elf.readUInt32LE(a + 8))];
      const fallbackAt = fallback === undefined ? undefined : nameAt.get(fallback);
      if (fallback === undefined || fallbackAt === undefined) continue;
      elf.writeUInt32LE(elfHash(fallback), a);
      elf.writeUInt32LE(fallbackAt, a + 8);
      changed++;
    }
  }
  const dynsym = all.find((s) => s.type === SHT_DYNSYM);
  if (dynsym) {
    const strtab = all[dynsym.link]!.offset;
    for (let s = dynsym.offset; s < dynsym.offset + dynsym.size; s += dynsym.entsize) {
      const at = strtab + elf.readUInt32LE(s);
      const fallback = SYMBOL_FALLBACK[cString(elf, at)];
      if (fallback === undefined) continue;
      elf.write(`${fallback}\0`, at, 'latin1');
      changed++;
    }
  }
  return changed;
}

function compatibleCopy(prebuilt: string): string {
  const out = path.resolve(__dirname, '../../../build/fuzz', PREBUILT);
  const stat = fs.statSync(prebuilt);
  if (fs.existsSync(out) && fs.statSync(out).mtimeMs >= stat.mtimeMs) return out;
  const elf = fs.readFileSync(prebuilt);
  if (patchSymbolVersions(elf) === 0) throw new Error(`${prebuilt}: no symbol versions to fall back from`);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(`${out}.tmp`, elf);
  fs.renameSync(`${out}.tmp`, out);
  return out;
}

const originalDlopen = process.dlopen.bind(process);
// Node passes flags only when the caller gave some; an explicit undefined is refused, so pass them on as given.
process.dlopen = (module: { exports: unknown }, filename: string, ...flags: number[]): void => {
  if (path.basename(filename) !== PREBUILT || !filename.includes(`${path.sep}@jazzer.js${path.sep}`)) {
    return originalDlopen(module, filename, ...flags);
  }
  try {
    return originalDlopen(module, filename, ...flags);
  } catch (e) {
    if (!(e instanceof Error) || !/version `[A-Z_]+[0-9.]+' not found/.test(e.message)) throw e;
    return originalDlopen(module, compatibleCopy(filename), ...flags);
  }
};

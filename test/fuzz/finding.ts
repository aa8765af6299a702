// What a fuzz target may let through and what it reports. A parser refuses input in the way its
// API documents (a typed result, a typed error, null); anything else that escapes it is thrown as
// a Finding, which Jazzer.js reports with the input that caused it.

export class Finding extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Finding';
  }
}

/** A `{ ok, reason }` result: ok, or refused with one of `reasons`. */
export function typed(r: { readonly ok: boolean; readonly reason?: unknown }, reasons: readonly string[], what: string): void {
  if (typeof r.ok !== 'boolean') throw new Finding(`${what}: result without ok`);
  if (!r.ok && !reasons.includes(r.reason as string)) throw new Finding(`${what}: untyped refusal ${String(r.reason)}`);
}

/**
 * Runs `call`; an exception that `isRefusal` accepts is the documented refusal (undefined is
 * returned), any other is rethrown as it is, so the report shows its own stack.
 */
export function refusing<T>(call: () => T, isRefusal: (e: unknown) => boolean): T | undefined {
  try {
    return call();
  } catch (e) {
    if (isRefusal(e)) return undefined;
    throw e;
  }
}

/** Splits the input into up to `max` parts at each 0xff byte (so the fuzzer can build several messages). */
export function parts(data: Buffer, max: number): Buffer[] {
  const out: Buffer[] = [];
  let from = 0;
  for (let i = 0; i < data.length && out.length < max - 1; i++) {
    if (data[i] === 0xff) {
      out.push(data.subarray(from, i));
      from = i + 1;
    }
  }
  out.push(data.subarray(from));
  return out;
}

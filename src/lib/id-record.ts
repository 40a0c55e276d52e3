/**
 * Records keyed by outside ids (product ids, endpoint ids, header names, …). Outside ids are data,
 * never property names: every name of Object.prototype (`__proto__`, `constructor`, `toString`, …)
 * matches the contract's id pattern, and on a plain `{}` such a key reads an inherited member
 * (`rec['constructor']` is a function) or, for `__proto__`, replaces the prototype on write — or,
 * when the value read is then mutated, writes onto Object.prototype itself. A record without a
 * prototype has no inherited members: every key, `__proto__` included, is an ordinary own property,
 * and JSON.stringify writes it like any other.
 */
export type IdRecord<T> = Record<string, T>;

/** An empty record without a prototype, or a copy of `from`'s own enumerable entries into one. */
export function idRecord<T>(from?: Readonly<Record<string, T>> | null): IdRecord<T> {
  const out = Object.create(null) as IdRecord<T>;
  // Object.keys lists an own `__proto__` (JSON.parse creates one); the assignment on a prototype-less
  // object makes it an own property too, where a spread or Object.assign into `{}` would drop it.
  if (from) for (const k of Object.keys(from)) out[k] = from[k]!;
  return out;
}

/** `Object.hasOwn` under a name that says why: only own entries count, never inherited members. */
export function hasId(rec: Readonly<Record<string, unknown>>, id: string): boolean {
  return Object.prototype.hasOwnProperty.call(rec, id);
}

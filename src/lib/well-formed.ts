/**
 * Text that is not Unicode: a JSON `\uD800`-style escape of a lone UTF-16 surrogate (UTF-8 bytes
 * cannot carry one; Node decodes invalid bytes as U+FFFD, so only an escape makes it). JSON.parse keeps
 * it and JSON.stringify writes it back as the same escape, but Redis' Lua cjson refuses to decode such
 * a record ("invalid unicode escape code"): a show title with one was stored (202) and then every
 * sync of the show failed in the mirror-record script, for good. No platform takes such text either.
 * So it is refused at the edge, where the input arrives (events, operator bodies): a 400 naming the field.
 */

/** In a `u` regex a surrogate pair is one code point: only an unpaired surrogate matches. */
const LONE_SURROGATE = /\p{Surrogate}/u;

/**
 * The dotted path of the first string (value or key) in a parsed JSON value that holds a lone
 * surrogate, '(root)' for the value itself; undefined when all text is well-formed. Iterative: a
 * deeply nested body (JSON.parse takes 100 000 levels) does not overflow the stack.
 */
export function loneSurrogateAt(value: unknown): string | undefined {
  const stack: [unknown, string][] = [[value, '']];
  while (stack.length > 0) {
    const [v, path] = stack.pop()!;
    if (typeof v === 'string') {
      if (LONE_SURROGATE.test(v)) return path || '(root)';
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push([v[i], path ? `${path}.${i}` : String(i)]);
    } else if (v !== null && typeof v === 'object') {
      const keys = Object.keys(v);
      for (let i = keys.length - 1; i >= 0; i--) {
        const k = keys[i]!;
        const p = path ? `${path}.${k}` : k;
        if (LONE_SURROGATE.test(k)) return p;
        stack.push([(v as Record<string, unknown>)[k], p]);
      }
    }
  }
  return undefined;
}

export const LONE_SURROGATE_MESSAGE = 'not well-formed Unicode: a lone UTF-16 surrogate escape (\\uD800-\\uDFFF without its pair)';

/** Global: every unpaired surrogate of a string (a pair is one code point under `u`). */
const LONE_SURROGATES = /\p{Surrogate}/gu;

/**
 * JSON.stringify(value), with every lone surrogate in its text (values and keys) replaced by U+FFFD.
 * For records Redis Lua decodes that hold text we do not control: a platform API's answer (show id,
 * url, title, an error message in `lastError`) can carry one, and a stored one made every later save
 * of the record fail in Lua's cjson, for good. We cannot refuse a platform's answer the way we refuse
 * a partner's input, so its text is kept, made well-formed. JSON.stringify writes a lone surrogate as
 * a `\udXXX` escape (and a pair as the characters themselves), so text without `\ud` skips the walk.
 */
export function wellFormedJson(value: unknown): string {
  const json = JSON.stringify(value);
  if (json === undefined || !json.includes('\\ud')) return json;
  return JSON.stringify(value, (_key: string, v: unknown) => {
    if (typeof v === 'string') return v.replace(LONE_SURROGATES, '\uFFFD');
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const keys = Object.keys(v);
    if (!keys.some((k) => LONE_SURROGATE.test(k))) return v;
    const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
    for (const k of keys) out[k.replace(LONE_SURROGATES, '\uFFFD')] = (v as Record<string, unknown>)[k];
    return out;
  });
}

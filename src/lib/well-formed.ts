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

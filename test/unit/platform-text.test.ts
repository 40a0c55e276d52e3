/** src/targets/platform-text.ts: what the adapters send as titles and descriptions (property tests). */
import fc from 'fast-check';
import { hasUnsafeText, platformLine, platformText, platformTitle } from '../../src/targets/platform-text.js';

/** Every character the cleaning removes (C0, DEL, C1, bidi embeddings/overrides/isolates). */
const UNSAFE_CHARS = [
  ...Array.from({ length: 0x20 }, (_, i) => String.fromCharCode(i)),
  ...Array.from({ length: 0x21 }, (_, i) => String.fromCharCode(0x7f + i)),
  ...'\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069',
];
const unsafe = fc.constantFrom(...UNSAFE_CHARS);
/** Ordinary text: emoji (with ZWJ and skin tones), Hebrew, Arabic, the implicit direction marks, accents. */
const ordinary = fc.constantFrom('a', 'Z', ' ', 'é', 'ß', '🎉', '👩‍👩‍👧', '👍🏽', 'ש', 'ל', 'ו', 'ם', 'م', 'ر', 'ح', 'ب', '\u200e', '\u200f', '\u061c', '\u200d', '中', '<', '&', '—', '…');
const mixed = fc.array(fc.oneof({ arbitrary: ordinary, weight: 3 }, { arbitrary: unsafe, weight: 1 }), { maxLength: 60 }).map((a) => a.join(''));
const clean = fc.array(ordinary, { maxLength: 60 }).map((a) => a.join(''));
const anyText = fc.oneof(mixed, fc.string({ unit: 'binary', maxLength: 80 }));

test('a cleaned title or description holds none of the removed characters', () => {
  fc.assert(
    fc.property(anyText, (s) => {
      const line = platformLine(s);
      const text = platformText(s);
      // One expect for all 74 characters, not one each (30,000 matcher calls: 1.6-2.2 s of this case, now 0.2 s).
      expect(UNSAFE_CHARS.filter((c) => line.includes(c))).toEqual([]);
      expect(UNSAFE_CHARS.filter((c) => c !== '\t' && c !== '\n' && text.includes(c))).toEqual([]);
      expect(hasUnsafeText(line)).toBe(false);
      expect(hasUnsafeText(text, true)).toBe(false);
      // Cleaning twice changes nothing.
      expect(platformLine(line)).toBe(line);
      expect(platformText(text)).toBe(text);
    }),
    { numRuns: 200 },
  );
});

test('ordinary Unicode (emoji, Hebrew, Arabic, direction marks) is kept as it is', () => {
  fc.assert(
    fc.property(clean, (s) => {
      expect(platformLine(s)).toBe(s);
      expect(platformText(s)).toBe(s);
    }),
    { numRuns: 300 },
  );
});

test('only the removed characters go: the rest of the text is kept in order', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(clean, unsafe.filter((c) => !'\t\n\r'.includes(c)))), clean, (parts, tail) => {
      const dirty = parts.map(([a, u]) => a + u).join('') + tail;
      const expected = parts.map(([a]) => a).join('') + tail;
      expect(platformLine(dirty)).toBe(expected);
      expect(platformText(dirty)).toBe(expected);
    }),
  );
});

test('line breaks: a title gets a space for each; a description keeps LF and tab, CR LF and CR become LF', () => {
  expect(platformLine('a\tb\nc\r\nd\re')).toBe('a b c  d e');
  expect(platformText('a\tb\nc\r\nd\re')).toBe('a\tb\nc\nd\ne');
  expect(platformLine('Sale\u0000 \u202Eelas\u202C שלום 🎉')).toBe('Sale elas שלום 🎉');
});

test('platformTitle: the fallback only when nothing but white space is left', () => {
  expect(platformTitle('\u0000\u202E\u2066\u2069\u0007', 'Live show')).toBe('Live show');
  expect(platformTitle(' \t\r\n\u202C ', 'Live show')).toBe('Live show');
  expect(platformTitle('\u0000Spring\u202E drop', 'Live show')).toBe('Spring drop');
  fc.assert(
    fc.property(anyText, (s) => {
      const t = platformTitle(s, 'Product');
      expect(t.trim()).not.toBe('');
      if (platformLine(s).trim() !== '') expect(t).toBe(platformLine(s));
    }),
  );
});

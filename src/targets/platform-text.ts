/**
 * Free text a partner sent (show and product titles, descriptions) made fit for a platform: every
 * adapter that sends such text to a platform passes it through here first.
 *
 * Removed: control characters (C0, DEL, C1: a NUL or an ESC is no part of a title; some platforms
 * refuse the request, others store it and show garbage) and the bidi embedding, override and isolate
 * controls U+202A–U+202E and U+2066–U+2069 (an override makes a title read in another order than it
 * is written: "Trojan Source" style spoofing of a title next to a price or a link). An attack on
 * `npm start` found a NUL and a U+202E in a show title reaching YouTube, Bambuser and Facebook as sent.
 * A text that allows several lines (a description) keeps tab and line feed (CR LF and a lone CR become
 * LF); in a single-line text (a title) they become a space. Everything else is kept: emoji, letters of
 * right-to-left scripts, the implicit direction marks U+200E, U+200F and U+061C, joiners (ZWJ).
 */

/** C0 + DEL + C1 controls (\p{Cc}), and the explicit bidi formatting characters. */
const UNSAFE = /[\p{Cc}\u202a-\u202e\u2066-\u2069]/gu;
/** The same without tab and line feed (a multi-line text keeps them). */
const UNSAFE_MULTILINE = /(?![\t\n])[\p{Cc}\u202a-\u202e\u2066-\u2069]/gu;

/** Does `s` hold a character platformLine (or, `multiline`, platformText) would remove? For tests and the simulators. */
export function hasUnsafeText(s: string, multiline = false): boolean {
  const re = multiline ? UNSAFE_MULTILINE : UNSAFE;
  re.lastIndex = 0;
  const found = re.test(s);
  re.lastIndex = 0;
  return found;
}

/** A single-line text (a title): tab, CR and LF become a space, the other unsafe characters go. */
export function platformLine(s: string): string {
  return s.replace(/[\t\n\r]/g, ' ').replace(UNSAFE, '');
}

/** A multi-line text (a description): line ends become LF, tab and LF stay, the other unsafe characters go. */
export function platformText(s: string): string {
  return s.replace(/\r\n?/g, '\n').replace(UNSAFE_MULTILINE, '');
}

/** What a show title made only of removed characters or white space goes out as (platforms refuse an empty title). */
export const SHOW_TITLE_FALLBACK = 'Live show';
/** Likewise for a product's title in a pin (a chat message, a comment, a Bambuser show product). */
export const PRODUCT_TITLE_FALLBACK = 'Product';

/**
 * platformLine for a title: `fallback` when nothing but white space is left. A title of control or
 * bidi characters only (or of spaces: the partner schema asks for one character, any) became empty,
 * and YouTube (`titleRequired`) and Bambuser (`title is required`) refused the create or update, so
 * the mirror failed over text the partner cannot see. The adapters know neither the show id nor
 * anything else that names the show to viewers, so the fallback is a fixed label.
 */
export function platformTitle(s: string, fallback: string): string {
  const line = platformLine(s);
  return line.trim() === '' ? fallback : line;
}

/**
 * A platform's text as a discrepancy's detail quotes it: JSON.stringify (which writes control characters
 * and lone surrogates as escapes), and every other \p{C} character (a format character such as U+200E
 * or U+FEFF, a private-use or unassigned one) as \uXXXX too: invisible as itself, the operator would not
 * see which character the ledger refused.
 */
export function quotedText(v: string): string {
  return JSON.stringify(v).replace(/\p{C}/gu, (c) => [...Array(c.length).keys()].map((i) => `\\u${c.charCodeAt(i).toString(16).padStart(4, '0')}`).join(''));
}

/**
 * The cursors a paged order report was handed. A cursor that points at the page just read ends the
 * listing (nothing new is behind it); one handed out before (A → B → A) is a loop that never ends: it
 * went on for MAX_PAGES (1,000) page requests before the report failed `too_many_pages`, and now fails
 * the same way at the first repeat.
 */
import { PermanentError } from './target.errors.js';

export class CursorTrail {
  private readonly seen = new Set<string>();

  /** `what`: the listing, as the error names it (e.g. "Whatnot order list"). */
  constructor(private readonly what: string) {}

  /** The cursor to ask for after the page read at `asked`, whose answer named `next`; undefined: the listing ended. */
  next(asked: string | undefined, next: string | null | undefined): string | undefined {
    if (!next || next === asked) return undefined;
    if (this.seen.has(next)) throw new PermanentError(`${this.what} did not end: a page named a cursor an earlier page named (after ${this.seen.size + 1} pages)`, 'too_many_pages');
    this.seen.add(next);
    return next;
  }
}

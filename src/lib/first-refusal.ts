/**
 * An array schema for a platform answer that may be very long (an unpaged report): its elements are read
 * one at a time and the parse stops at the first refused one, whose issues (under its index) are the
 * parse's. `z.array` reads every element and keeps every refused one's issues, ~2 KiB each: an answer
 * of a million `{}` (3 MB, from a hostile or wrong baseUrl) would have cost 2 GiB of issues, where the
 * whole answer is refused by its first bad element all the same (malformedResponse names three issues).
 */
import { z } from 'zod';

export function firstRefusalArray<T extends z.ZodType>(element: T): z.ZodType<z.output<T>[], unknown[]> {
  return z.array(z.unknown()).transform((items, ctx) => {
    const out: z.output<T>[] = new Array<z.output<T>>(items.length);
    for (let i = 0; i < items.length; i++) {
      const r = element.safeParse(items[i]);
      if (!r.success) {
        for (const issue of r.error.issues) ctx.issues.push({ code: 'custom', message: issue.message, input: items[i], path: [i, ...issue.path] });
        return z.NEVER;
      }
      out[i] = r.data;
    }
    return out;
  });
}

/**
 * The form of each platform's show id, as the operator links it (PUT …/mirrors/{targetId}
 * {"externalId"}). An id the platform could never accept is refused there (422, nothing stored):
 * stored, it answered 200 `ready` and the next sync failed the mirror. Only the form is checked; whether
 * the show exists is the sync's question (the platform's). The simulators issue ids of these forms.
 * - YouTube: a broadcast id is the video's id, 11 url-safe base64 characters encoding 64 bits, so the
 *   last one carries 4 bits: one of A E I M Q U Y c g k o s w 0 4 8.
 * - TikTok: a LIVE room id is a decimal 64-bit (signed) number, today 19 digits (7…).
 * - Whatnot: a show id is a UUID (the Seller API's ShowsInput takes "show UUIDs"; whatnot.com/live/{uuid}).
 * - Bambuser: a Live Shopping show id is 20 letters and digits.
 * - Facebook: a live video id is a Graph object id, a decimal number.
 */
import { z } from 'zod';
import type { Platform } from './target.adapter.js';

const INT64_MAX = 2n ** 63n - 1n;
const decimalId = (what: string, digits: string): z.ZodType<string> =>
  z.string().regex(new RegExp(`^[1-9][0-9]{${digits}}$`), `a ${what} is a decimal number without leading zeros`)
    .refine((s) => !/^[0-9]+$/.test(s) || BigInt(s) <= INT64_MAX, `a ${what} is a 64-bit number (at most ${INT64_MAX})`);

export const EXTERNAL_ID_SCHEMAS: Record<Platform, z.ZodType<string>> = {
  youtube: z.string().regex(/^[A-Za-z0-9_-]{10}[AEIMQUYcgkosw048]$/, 'a YouTube broadcast id is the video id: 11 characters of A-Z a-z 0-9 - _ (e.g. dQw4w9WgXcQ)'),
  tiktok: decimalId('TikTok LIVE room id', '0,18'),
  whatnot: z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, 'a Whatnot show id is a UUID (as in whatnot.com/live/{id})'),
  bambuser: z.string().regex(/^[A-Za-z0-9]{20}$/, 'a Bambuser show id is 20 letters and digits'),
  facebook: decimalId('Facebook live video id', '0,18'),
};

/** Why `id` cannot be a show id of `platform`, or undefined when it has the platform's form. */
export function externalIdProblem(platform: Platform, id: string): string | undefined {
  const r = EXTERNAL_ID_SCHEMAS[platform].safeParse(id);
  return r.success ? undefined : `"${id.length > 64 ? `${id.slice(0, 64)}…` : id}" is not a ${platform} show id: ${r.error.issues[0]?.message ?? 'malformed'}`;
}

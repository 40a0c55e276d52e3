/**
 * Pages of a sorted set, highest score first (ZREVRANGE's order: score descending, then member
 * descending byte-wise), that go on from a stable cursor: the score and member of the last item given.
 * The next page starts right after where that item sits in the order, wherever it or anything else
 * is now, so members added or removed while a client pages are neither repeated nor skipped (an
 * offset shifted under them: a show scheduled after the first page read repeated the last item of
 * it, one rescheduled from the first page to the end skipped the first item of the next). A member
 * whose score changed meanwhile is listed where its new score puts it (it moved).
 *
 * The cursor is opaque to clients: base64url of the JSON `[score, member]`. A plain non-negative
 * integer is a position (the cursors these lists gave before), still paged from.
 */
import type { Result } from 'ioredis';
import { z } from 'zod';
import { decodeJsonCursor } from '../lib/tuple-cursor.js';
import { defineRedisScripts, type RedisClient } from './redis.js';

/** Where a page starts: after this item (a cursor), at this position (an old cursor), or at the top. */
export type PageStart = { after: { score: number; member: string } } | { offset: number } | undefined;

export interface ZsetPage {
  /** The members of the page with their scores, in order. */
  items: { member: string; score: number }[];
  /** The set's size when the page was read. */
  total: number;
  /** Whether members follow the page (in the same read). */
  more: boolean;
}

const MAX_MEMBER = 512;

/**
 * KEYS[1]: the sorted set. ARGV: limit, mode ('' from the top, 'o' offset, 'a' after), then the
 * offset, or the score and member of the item the page goes on after. Returns {flat member/score
 * list, total, start}. The ties of the cursor's score (a band in member order, descending) are
 * searched for the first member below the cursor's by binary search, comparing bytes (Lua's `<` on
 * strings follows the server's locale, Redis orders members by memcmp).
 */
const ZREV_PAGE_LUA = `
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local start = 0
if ARGV[2] == 'o' then
  start = tonumber(ARGV[3])
elseif ARGV[2] == 'a' then
  local s = ARGV[3]
  local id = ARGV[4]
  local function below(a, b)
    local n = math.min(#a, #b)
    for i = 1, n do
      local x, y = string.byte(a, i), string.byte(b, i)
      if x ~= y then return x < y end
    end
    return #a < #b
  end
  local lo = 0
  local hi = redis.call('ZCOUNT', key, s, s)
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    local m = redis.call('ZREVRANGEBYSCORE', key, s, s, 'LIMIT', mid, 1)[1]
    if below(m, id) then hi = mid else lo = mid + 1 end
  end
  start = redis.call('ZCOUNT', key, '(' .. s, '+inf') + lo
end
return {redis.call('ZREVRANGE', key, start, start + limit - 1, 'WITHSCORES'), redis.call('ZCARD', key), start}
`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    scZrevPage(key: string, limit: number, mode: string, ...args: (string | number)[]): Result<[string[], number, number], Context>;
  }
}

function define(redis: RedisClient): void {
  defineRedisScripts(redis, { scZrevPage: { numberOfKeys: 1, lua: ZREV_PAGE_LUA } });
}

/** One page of `key`, highest score first, from `start` (one script: the page, the total and whether more follow agree). */
export async function zrevPage(redis: RedisClient, key: string, start: PageStart, limit: number): Promise<ZsetPage> {
  define(redis);
  const args: [string, ...(string | number)[]] = !start ? [''] : 'offset' in start ? ['o', start.offset] : ['a', String(start.after.score), start.after.member];
  const [flat, total, at] = await redis.scZrevPage(key, limit, ...args);
  const items: ZsetPage['items'] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) items.push({ member: flat[i]!, score: Number(flat[i + 1]) });
  return { items, total: Number(total), more: Number(at) + items.length < Number(total) };
}

/** Whether (score, member) comes after `after` in the order of zrevPage (score descending, then member descending by bytes). */
export function comesAfter(item: { score: number; member: string }, after: { score: number; member: string }): boolean {
  if (item.score !== after.score) return item.score < after.score;
  return Buffer.compare(Buffer.from(item.member), Buffer.from(after.member)) < 0;
}

/** The cursor of a page that ends with this item. */
export function pageCursor(last: { score: number; member: string }): string {
  return Buffer.from(JSON.stringify([last.score, last.member])).toString('base64url');
}

const OFFSET = /^\d{1,15}$/;

/** The start a `cursor` query parameter names, or null when it is none this API gives. */
export function parsePageCursor(cursor: string | undefined): PageStart | null {
  if (cursor === undefined) return undefined;
  if (OFFSET.test(cursor)) return { offset: Number(cursor) };
  const v = decodeJsonCursor(cursor);
  if (v === undefined) return null;
  if (!Array.isArray(v) || v.length !== 2) return null;
  const [score, member] = v as unknown[];
  if (typeof score !== 'number' || !Number.isFinite(score) || typeof member !== 'string' || member.length === 0 || member.length > MAX_MEMBER) return null;
  return { after: { score, member } };
}

/** A list's `cursor` at the edge: a previous page's `nextCursor` (else 400 with this reason). */
export const PageCursorSchema = z
  .string()
  .max(1024)
  .refine((c) => parsePageCursor(c) !== null, 'a nextCursor from a previous page of this list expected')
  .describe("the previous page's `nextCursor` (opaque); a number is a position, as the cursors given before");

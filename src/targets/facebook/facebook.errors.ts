/**
 * Graph API failures → the typed errors of target.errors.ts. Pure (clock and headers are parameters).
 * Codes: https://developers.facebook.com/docs/graph-api/guides/error-handling and
 * https://developers.facebook.com/docs/graph-api/overview/rate-limiting.
 *
 * The Graph API reports most failures with HTTP 400 and the meaning in `error.code`, so the code
 * decides, not the status. A Page access token cannot be refreshed by us: 190 means a Page admin must
 * authorise the app again, so it is permanent (mirror `failed` with a re-authorise message).
 */
import { PermanentError, PinRefusedError, RateLimitedError, RetryableError } from '../target.errors.js';
import { GraphErrorSchema, type GraphError } from './facebook.schemas.js';
import { credentialsPatch, type AdviceTarget } from '../credentials-advice.js';
import { networkFailure, platformWait, type MappedFailure } from '../target.failure.js';
export type { MappedFailure };

export type FacebookFailure =
  | { kind: 'http'; status: number; body: unknown; headers: Record<string, string | undefined> }
  | { kind: 'network'; code: string | undefined; message: string };

export interface FailureContext {
  partnerId: string;
  targetId: string;
  /** The target's credential field names, for the PATCH an advice names (credentials-advice.ts adviceTarget). */
  advice?: AdviceTarget;
  what: string;
  /**
   * The pinned product the call names (Live Shopping's pin: `product_id` = its catalog item): an
   * invalid-parameter refusal (code 100) whose message names `product_id` refuses that product only
   * (PinRefusedError), not the token, the Page or the video.
   */
  pinOf?: string;
  /**
   * The Business Use Case type the call counts under (`pages`, `catalog_management`: the `type` of
   * X-Business-Use-Case-Usage; `pages` when none). A Business Use Case throttle blocks the use case
   * its code names and this one, not the target.
   */
  useCase?: string;
}

/** Graph names the parameter it refuses in the message ("(#100) Param product_id must be …"). */
const PRODUCT_PARAM = /\bproduct_id\b/;

/**
 * Throttling: 4 app, 17 user, 32 Page, 613 custom (per-endpoint) limit, 341 application limit, and
 * the Business Use Case family (what Page tokens hit): 80001 Pages, and the other use cases' codes of
 * the rate-limiting guide (80000 / 80002 Instagram, 80003 custom audiences, 80004 ads management,
 * 80005 lead ads, 80006 Messenger, 80007 the WhatsApp Business Account's rate limit (WhatsApp's error
 * codes: "reached its rate limit", hourly), 80008 WhatsApp Business Management, 80009 catalog
 * management, 80014 catalog batch): 80000–80009 and 80014, as docs/platforms.md lists them. A Live
 * Shopping call acts on catalog items: taking 80001 alone for throttling failed a pin throttled under
 * another use case as if Facebook had refused it.
 */
export const THROTTLING_CODES = new Set([4, 17, 32, 613, 341, 80000, 80001, 80002, 80003, 80004, 80005, 80006, 80007, 80008, 80009, 80014]);
/**
 * The Business Use Case family: Graph counts and throttles each use case on its own ("Business Use
 * Case rate limits": one per type and business object), so such a throttle holds the calls of its
 * use case, not the Page's others (a catalog throttle does not hold the live video's end or the
 * comments). The others (4 app, 17 user, 32 Page, 341, 613) hold every call of the target. The family
 * is THROTTLING_CODES' 800xx codes, listed once: a second list (a range here) made that set's 800xx
 * entries dead, so dropping one of them there changed nothing.
 */
const USE_CASE_CODES = (code: number): boolean => code >= 80000 && THROTTLING_CODES.has(code);
/** The use case of every Page call (live videos, comments) that names no other. */
export const PAGES_USE_CASE = 'pages';
/**
 * The use case a Business Use Case code names (the rate-limiting guide's table; `type` of
 * X-Business-Use-Case-Usage): Graph says which use case it throttled, whatever we assumed the call
 * counts under. The codes whose `type` we could not confirm (80000, 80007, 80008, 80014) block the
 * call's own use case only.
 */
const USE_CASE_OF_CODE = new Map<number, string>([
  [80001, PAGES_USE_CASE],
  [80002, 'instagram'],
  [80003, 'custom_audience'],
  [80004, 'ads_management'],
  [80005, 'leadgen'],
  [80006, 'messenger'],
  [80009, 'catalog_management'],
]);

/** How many use cases of one answer are blocked (a header is the platform's data: bounded). */
const MAX_USE_CASES = 16;
/** The platform limits are rolling (one hour): without an estimate, look again in a minute. */
export const DEFAULT_THROTTLE_DELAY_MS = 60_000;
/** Permissions missing (10, 200–299): the Page token was granted without what this call needs. */
const PERMISSION_CODES = (code: number): boolean => code === 10 || (code >= 200 && code <= 299);

export function graphError(body: unknown): GraphError | undefined {
  const parsed = GraphErrorSchema.safeParse(body);
  return parsed.success ? parsed.data.error : undefined;
}

function clip(text: string | undefined): string {
  if (!text) return '';
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}

function parseJson(header: string | undefined): unknown {
  if (!header) return undefined;
  try {
    return JSON.parse(header) as unknown;
  } catch {
    return undefined;
  }
}

function minutesOf(v: unknown): number | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const m = (v as Record<string, unknown>).estimated_time_to_regain_access;
  return typeof m === 'number' && m >= 0 ? m : undefined;
}

/**
 * How long Facebook says to stay away, from the usage headers: `X-Business-Use-Case-Usage`
 * (`{"<id>":[{type, call_count, total_cputime, total_time, estimated_time_to_regain_access}]}`, Page
 * tokens) and `X-Page-Usage` carry `estimated_time_to_regain_access` in minutes; `X-App-Usage` only
 * percentages (then the default applies).
 */
/**
 * The `estimated_time_to_regain_access` of each Business Use Case type in `X-Business-Use-Case-Usage`
 * (ms, platformWait), the longest per type when several business objects name it; types whose
 * estimate is 0 are not throttled and are left out. Types are data (a Map). `X-Page-Usage`'s estimate
 * is the `pages` use case's. The `admit` types (the call's own, the code's) are kept whatever the
 * header names before them; the others up to MAX_USE_CASES.
 */
export function useCaseWaits(headers: Record<string, string | undefined>, admit: readonly string[] = []): Map<string, number> {
  const out = new Map<string, number>();
  const add = (type: string, minutes: number): void => {
    if (!out.has(type) && !admit.includes(type) && out.size >= MAX_USE_CASES) return;
    out.set(type, Math.max(out.get(type) ?? 0, platformWait(minutes * 60_000)));
  };
  const page = minutesOf(parseJson(headers['x-page-usage']));
  if (page !== undefined && page > 0) add(PAGES_USE_CASE, page);
  const buc = parseJson(headers['x-business-use-case-usage']);
  if (!buc || typeof buc !== 'object') return out;
  for (const entries of Object.values(buc as Record<string, unknown>)) {
    if (!Array.isArray(entries)) continue;
    for (const e of entries as unknown[]) {
      const minutes = minutesOf(e);
      const type = (e as { type?: unknown }).type;
      if (minutes === undefined || minutes <= 0 || typeof type !== 'string' || type === '' || type.length > 100) continue;
      add(type, minutes);
    }
  }
  return out;
}

export function regainDelayMs(headers: Record<string, string | undefined>): number | undefined {
  const minutes: number[] = [];
  const buc = parseJson(headers['x-business-use-case-usage']);
  if (buc && typeof buc === 'object') {
    for (const entries of Object.values(buc as Record<string, unknown>)) {
      if (Array.isArray(entries)) for (const e of entries) minutes.push(minutesOf(e) ?? -1);
    }
  }
  minutes.push(minutesOf(parseJson(headers['x-page-usage'])) ?? -1);
  const max = Math.max(...minutes);
  // (A JSON number may be 1e999: Infinity. platformWait bounds it.)
  return max > 0 ? platformWait(max * 60_000) : undefined;
}

export function mapFacebookFailure(failure: FacebookFailure, nowMs: number, ctx: FailureContext): MappedFailure {
  if (failure.kind === 'network') return networkFailure('Graph API', `Facebook ${ctx.what} timed out`, failure.code, failure.message);
  const { status, body, headers } = failure;
  const err = graphError(body);
  const code = err?.code;
  const sub = err?.error_subcode;
  const reason = code !== undefined ? `code_${code}${sub !== undefined ? `_${sub}` : ''}` : `http_${status}`;
  const quoted = clip(err?.error_user_msg ?? err?.message);

  if (code === 190 || (code === undefined && status === 401)) {
    return {
      error: new PermanentError(
        `Facebook rejected the Page access token (code 190${sub !== undefined ? `, subcode ${sub}` : ''}: ${quoted || 'invalid OAuth access token'}). ` +
          're-authorise the Page: a Page admin must log in to the app again (granting pages_manage_posts, pages_read_engagement and ' +
          `pages_manage_engagement), then store the new Page token with ${credentialsPatch(ctx.advice ?? { id: ctx.targetId, partnerId: ctx.partnerId }, ['pageAccessToken'])} and resync.`,
        'oauth_190',
      ),
    };
  }
  if (code !== undefined && USE_CASE_CODES(code)) {
    // The use case the code names (Graph's word) and the call's own (ours): each blocked for its own
    // estimate, the call retried after the longest of them (not the largest of the header); a block
    // of each other use case the header says is throttled; the target's other calls go on.
    const named = USE_CASE_OF_CODE.get(code);
    const mine = [...new Set([...(named !== undefined ? [named] : []), ctx.useCase ?? PAGES_USE_CASE])];
    const waits = useCaseWaits(headers, mine);
    const waitOf = (u: string): number => Math.max(1000, waits.get(u) ?? DEFAULT_THROTTLE_DELAY_MS);
    const delayMs = Math.max(...mine.map(waitOf));
    const reasonOf = (u: string): string => `facebook throttling (${u})`;
    const useCaseBlocks = mine.map((u) => ({ useCase: u, untilMs: nowMs + waitOf(u), reason: reasonOf(u) }));
    for (const [u, ms] of waits) if (!mine.includes(u)) useCaseBlocks.push({ useCase: u, untilMs: nowMs + ms, reason: reasonOf(u) });
    return {
      error: new RateLimitedError(`Facebook throttled ${ctx.what} (code ${code}, use case ${mine.join(', ')}): retry in ${Math.ceil(delayMs / 1000)} s`, delayMs, reason),
      useCaseBlocks,
    };
  }
  if ((code !== undefined && THROTTLING_CODES.has(code)) || status === 429) {
    const delayMs = Math.max(1000, regainDelayMs(headers) ?? DEFAULT_THROTTLE_DELAY_MS);
    return {
      error: new RateLimitedError(`Facebook throttled ${ctx.what} (code ${code ?? status}): retry in ${Math.ceil(delayMs / 1000)} s`, delayMs, reason),
      block: { untilMs: nowMs + delayMs, reason: 'facebook throttling' },
    };
  }
  if (code === 1 || code === 2 || err?.is_transient === true || (status >= 500 && code === undefined)) {
    return { error: new RetryableError(`Facebook ${ctx.what} failed temporarily (${code !== undefined ? `code ${code}` : `HTTP ${status}`})${quoted ? `: ${quoted}` : ''}`, { reason }) };
  }
  if (code !== undefined && PERMISSION_CODES(code)) {
    return {
      error: new PermanentError(
        `the Page access token lacks a permission for ${ctx.what} (code ${code}${quoted ? `: ${quoted}` : ''}): re-authorise the Page with ` +
          'pages_manage_posts, pages_read_engagement and pages_manage_engagement',
        reason,
      ),
    };
  }
  if (status >= 500) return { error: new RetryableError(`Facebook ${ctx.what}: HTTP ${status}${quoted ? `: ${quoted}` : ''}`, { reason }) };
  if (ctx.pinOf !== undefined && code === 100 && PRODUCT_PARAM.test(err?.message ?? '')) {
    // The catalog item is out of stock or discontinued (one not in the catalog is not pinned as a product:
    // the adapter posts a comment instead): the seller can restock it during the show, so the pin is
    // asked again while the show is live (`mendable`).
    return { error: new PinRefusedError(`Facebook refused to pin product ${ctx.pinOf} (code 100)${quoted ? `: ${quoted}` : ''}`, reason, { mendable: true }) };
  }
  return { error: new PermanentError(`Facebook refused ${ctx.what} (${code !== undefined ? `code ${code}` : `HTTP ${status}`})${quoted ? `: ${quoted}` : ''}`, reason) };
}

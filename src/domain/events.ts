/** Inbound partner events (README "Walkthrough with curl" and docs/architecture.md), validated at the edge. */
import { z } from 'zod';
import { ID_PATTERN } from '../lib/ids.js';
import { isCurrency, MoneySchema, NOT_A_CURRENCY, type Money } from './money.js';

export const IdSchema = z.string().regex(ID_PATTERN, 'must match [A-Za-z0-9_.:-]{1,128}');
/** An ISO-8601 timestamp with its offset, and the one message for one that is not (events, and the report and audit queries). */
export const Timestamp = z.iso.datetime({ offset: true, message: 'ISO-8601 timestamp expected' });
const FIRST_MS = Date.parse('0000-01-01T00:00:00Z');
const LAST_MS = Date.parse('9999-12-31T23:59:59.999Z');
/** Whether an instant is one ISO-8601 UTC writes with a four-digit year (0000-01-01T00:00:00Z … 9999-12-31T23:59:59.999Z). */
export function inFourDigitYears(ms: number): boolean {
  return ms >= FIRST_MS && ms <= LAST_MS;
}
/** An instant moved into the years 0000-9999 (inFourDigitYears): the nearest of its two ends when outside. */
export function withinFourDigitYears(ms: number): number {
  return Math.min(LAST_MS, Math.max(FIRST_MS, ms));
}
const WITH_OFFSET = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?([+-]\d{2}:\d{2})$/;

/**
 * A Timestamp (seconds, optional fraction, `Z` or `±HH:MM`) as ISO-8601 UTC, the form the contract gives
 * timestamps in: one with an offset becomes the same instant with `Z`, its fraction as written
 * (`2026-11-24T20:00:00.5+02:00` → `2026-11-24T18:00:00.5Z`); one in `Z` stays as it is. A time whose
 * UTC year has no four digits (`9999-12-31T23:00:00-02:00`) stays as given (ShowSchema refuses such a
 * scheduledAt: inFourDigitYears).
 */
export function utcTimestamp(value: string): string {
  const m = WITH_OFFSET.exec(value);
  if (!m) return value;
  const [, seconds, fraction = '', offset] = m;
  const utc = new Date(Date.parse(`${seconds!}${offset!}`));
  if (Number.isNaN(utc.getTime())) return value;
  const iso = utc.toISOString();
  return /^\d{4}-/.test(iso) ? `${iso.slice(0, 19)}${fraction}Z` : value;
}

const HttpUrl = z.url({ protocol: /^https?$/, message: 'http(s) URL expected' });
/** A show's video source for the relay to pull (README "Video relay"): HLS over http(s), RTMP(S) or SRT. */
const SourceUrl = z
  .url({ protocol: /^(https?|rtmps?|srt)$/, message: 'HLS (http(s)://…m3u8), rtmp(s):// or srt:// URL expected' })
  .max(2048)
  // Passed as it is to ffmpeg (pull mode): a NUL byte cannot be passed to a process at all, and
  // whitespace or control characters are no part of a URL a partner's encoder serves.
  .regex(/^[^\s\p{Cc}]+$/u, 'must not contain whitespace or control characters');

/**
 * A product's price is what the platforms show and sell at: never negative (one was accepted and pushed
 * to Bambuser, review 2026-12-01). Zero (a giveaway) is a price. Order lines are not bound here: the
 * contract fixes only that an order total is not negative.
 */
const PriceSchema = MoneySchema.extend({ amount: MoneySchema.shape.amount.min(0, 'price must not be negative') });

/**
 * A product's sku is any text up to 128 characters: the contract (§3, `Product.sku?`) gives it no
 * format (only ids are `[A-Za-z0-9_.:-]{1,128}`), so a partner's "LIP OIL 01" is accepted. A pin sends
 * it, in place of the product's own id, as the platform's product id (a URL path segment at TikTok and
 * Whatnot, percent-encoded); a platform that refuses it fails that pin only (PinRefusedError: the pin
 * `failed` with the platform's reason), never the show's mirror. (From 2026-12-03 07:08 to this change
 * such a sku was a 400 here, which the contract does not allow.)
 */
const SkuSchema = z.string().max(128);

/**
 * An optional field of a partner event, given as `null`, is read as absent (contract §3 writes
 * `clickId?` and is silent on null; Jackson, Newtonsoft, Go's pointers and Python's dataclasses write
 * null for a value they do not have). It was a 400, and a refused order.created is an order lost
 * unless the partner notices. Everything past the edge sees the field absent (withoutNullFields drops
 * the key), so the stored event, its re-parse (attribution worker, order-event sweep) and the desired
 * state's registers are those of the event without it. A required field given null stays a 400.
 * Partner events only: the API's own request bodies are unchanged.
 */
const nullAsAbsent = <T extends z.ZodType>(schema: T) => schema.nullish().transform((v) => v ?? undefined).optional();
/** Drops the keys nullAsAbsent left undefined: the parsed value is the one of the event that omits them. */
function withoutNullFields<T extends object>(value: T): T {
  for (const key of Object.keys(value) as (keyof T)[]) if (value[key] === undefined) delete value[key];
  return value;
}

export const ProductSchema = z.object({
  id: IdSchema,
  title: z.string().min(1).max(500),
  price: PriceSchema,
  url: HttpUrl,
  imageUrl: nullAsAbsent(HttpUrl),
  sku: nullAsAbsent(SkuSchema),
}).overwrite(withoutNullFields);
export type Product = z.infer<typeof ProductSchema>;

export const SHOW_STATES = ['scheduled', 'live', 'ended', 'cancelled'] as const;
export type ShowState = (typeof SHOW_STATES)[number];

export const ShowSchema = z.object({
  id: IdSchema,
  title: z.string().min(1).max(500),
  description: nullAsAbsent(z.string().max(5000)),
  // Stored and answered in UTC (utcTimestamp): an offset can move a four-digit year out of 0000-9999
  // ('9999-12-31T23:00:00-02:00' is 10000-01-01T01:00:00Z), which UTC cannot write in ISO-8601's form;
  // such a show was stored and echoed with its offset. Refused (400), as a reconciliation period is.
  scheduledAt: Timestamp.refine((v) => inFourDigitYears(Date.parse(v)), { message: 'must be within the years 0000-9999 once in UTC (0000-01-01T00:00:00Z … 9999-12-31T23:59:59.999Z)', abort: true }),
  state: z.enum(SHOW_STATES),
  sourceUrl: nullAsAbsent(SourceUrl),
  products: z.array(ProductSchema).max(1000).default([]),
  pinnedProductIds: z.array(IdSchema).max(1000).default([]),
}).overwrite(withoutNullFields);
export type Show = z.infer<typeof ShowSchema>;

const OrderLineSchema = z.object({ productId: IdSchema, quantity: z.number().int().positive(), amount: MoneySchema });
export const OrderSchema = z.object({
  id: IdSchema,
  clickId: nullAsAbsent(IdSchema),
  showId: nullAsAbsent(IdSchema),
  createdAt: Timestamp,
  lines: z.array(OrderLineSchema).max(1000).default([]),
  total: MoneySchema.refine((m) => m.amount >= 0, 'total must not be negative'),
}).overwrite(withoutNullFields);
export const RefundSchema = z.object({
  id: IdSchema,
  orderId: IdSchema,
  createdAt: Timestamp,
  amount: MoneySchema.refine((m) => m.amount > 0, 'refund amount must be positive'),
});

/**
 * An event's time orders its register writes (src/domain/desired-state.ts orderKey), compared as text by
 * Lua inside Redis, where `<` is strcoll() under the server's locale: keys of 1970 and later are digits
 * of one width and compare the same under any collation, a key for a negative time would not
 * (punctuation is ignored at the first level of e.g. en_US.UTF-8). Nothing a live show does happened
 * before 1970, so such a time is refused here. A text that is no timestamp is named for that alone
 * (abort), not also as before 1970.
 */
const OccurredAt = z.iso.datetime({ offset: true, message: 'ISO-8601 timestamp expected', abort: true }).refine((v) => Date.parse(v) >= 0, 'occurredAt before 1970-01-01T00:00:00Z is not accepted');
const base = { occurredAt: OccurredAt };
const showEvent = <T extends string>(type: T) => z.object({ type: z.literal(type), ...base, data: z.object({ show: ShowSchema }) });

export const PartnerEventSchema = z.discriminatedUnion('type', [
  showEvent('show.scheduled'),
  showEvent('show.updated'),
  showEvent('show.live'),
  showEvent('show.ended'),
  showEvent('show.cancelled'),
  z.object({ type: z.literal('product.pinned'), ...base, data: z.object({ showId: IdSchema, productId: IdSchema }) }),
  z.object({ type: z.literal('product.unpinned'), ...base, data: z.object({ showId: IdSchema, productId: IdSchema }) }),
  z.object({ type: z.literal('product.updated'), ...base, data: z.object({ showId: IdSchema, product: ProductSchema }) }),
  z.object({ type: z.literal('order.created'), ...base, data: z.object({ order: OrderSchema }) }),
  z.object({ type: z.literal('order.refunded'), ...base, data: z.object({ refund: RefundSchema }) }),
]);
export type PartnerEvent = z.infer<typeof PartnerEventSchema>;
export const EVENT_TYPES = PartnerEventSchema.options.map((o) => o.shape.type.value);

/**
 * What a show's event log keeps of a show event (src/store/show.repository.ts SHOW_EVENT_LOG_MAX_LEN):
 * what its reader, the ops console's show timeline, shows — the type, `occurredAt` (cut at 64
 * characters: a fraction may have any number of digits), a pin's product id, a snapshot's state —
 * in the shape of the event. A few hundred bytes at most; the event's content is in the show's
 * registers (desired state), which is what everything else reads.
 */
export function showLogEntry(event: PartnerEvent): string {
  const data = 'productId' in event.data ? { productId: event.data.productId } : 'product' in event.data ? { productId: event.data.product.id } : 'show' in event.data ? { show: { state: event.data.show.state } } : {};
  return JSON.stringify({ type: event.type, occurredAt: event.occurredAt.slice(0, 64), data });
}

/** An order line whose currency differs from its order's total (an order is in one currency, no FX). */
export const lineCurrencyMismatch = (line: string, total: string): string =>
  `currency ${line} differs from the order total's ${total}: an order is in one currency (totals are per currency, no FX)`;

/**
 * The money fields of an event whose currency is not on ISO's list (isCurrency), and the order lines
 * whose currency is not the order total's, as field errors in the order zod reports them. An order whose
 * lines are in another currency than its total was counted in the total's currency (attack on npm start,
 * 2026-12-02). Checked at the edge only (IngestService): PartnerEventSchema checks the shape, so that a
 * stored event acknowledged earlier parses again later whatever the list or this rule says then.
 * A refund's currency against its order's is not checked here: the order may arrive after its refund
 * (contract §5.3) and knowing it takes a Redis read; the ledger stores such a refund unapplied.
 */
export function currencyIssues(event: PartnerEvent): { path: string; message: string }[] {
  const issues: { path: string; message: string }[] = [];
  if (event.type === 'order.created') {
    const { lines, total } = event.data.order;
    const totalKnown = isCurrency(total.currency);
    lines.forEach((l, i) => {
      const path = `data.order.lines.${i}.amount.currency`;
      if (!isCurrency(l.amount.currency)) issues.push({ path, message: NOT_A_CURRENCY });
      else if (totalKnown && l.amount.currency !== total.currency) issues.push({ path, message: lineCurrencyMismatch(l.amount.currency, total.currency) });
    });
    if (!totalKnown) issues.push({ path: 'data.order.total.currency', message: NOT_A_CURRENCY });
    return issues;
  }
  const money: [string, Money][] = [];
  switch (event.type) {
    case 'show.scheduled':
    case 'show.updated':
    case 'show.live':
    case 'show.ended':
    case 'show.cancelled':
      event.data.show.products.forEach((p, i) => money.push([`data.show.products.${i}.price`, p.price]));
      break;
    case 'product.updated':
      money.push(['data.product.price', event.data.product.price]);
      break;
    case 'order.refunded':
      money.push(['data.refund.amount', event.data.refund.amount]);
      break;
    default:
      break;
  }
  return money.filter(([, m]) => !isCurrency(m.currency)).map(([path]) => ({ path: `${path}.currency`, message: NOT_A_CURRENCY }));
}

/** The show state an event type implies (a `show.live` event's snapshot is live whatever it says). */
export function impliedState(ev: PartnerEvent): ShowState | undefined {
  switch (ev.type) {
    case 'show.live':
      return 'live';
    case 'show.ended':
      return 'ended';
    case 'show.cancelled':
      return 'cancelled';
    case 'show.scheduled':
    case 'show.updated':
      return ev.data.show.state;
    default:
      return undefined;
  }
}

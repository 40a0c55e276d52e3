/**
 * The parts of Whatnot Seller API v2 responses and webhooks the adapter reads
 * (https://developers.whatnot.com, API reference: Shows, Merchandising, Orders; Webhooks).
 *
 * Parsed defensively: unknown fields are allowed (dropped); a field the adapter relies on that is
 * missing or of another shape fails the parse, and the client turns that into a PermanentError
 * `malformed_response` naming the field's path (e.g. `data.3.amounts.total.amount`). Fields the public
 * reference does not confirm (marked "unconfirmed") are optional and may be null, so a differently
 * shaped answer costs a detail (no product id, no refund figure) instead of the whole call.
 * Confirmed: order statuses pending / pending_fulfillment / completed / cancelled / failed, show
 * statuses scheduled / live / stopped / ended / cancelled, money as `{amount: "<decimal>", currency}`.
 * Unconfirmed: the `GET /orders` parameters and envelope, `amounts.refunded`, and the envelope and
 * `product_id` of `GET /orders/{id}/items` (docs/platforms.md).
 */
import { z } from 'zod';
import { PlatformTimestampSchema } from '../../lib/timestamp.js';
import { reportElement } from '../report-order.js';

/** RFC 9457 problem details, plus Whatnot's extras. `type` is a short slug, e.g. "rate-limited". */
export const ProblemSchema = z.object({
  type: z.string().optional(),
  title: z.string().optional(),
  status: z.number().int().optional(),
  detail: z.string().optional(),
  param: z.string().optional(),
  required_scopes: z.array(z.string()).optional(),
});
export type Problem = z.infer<typeof ProblemSchema>;

export const SHOW_STATUSES = ['scheduled', 'live', 'stopped', 'ended', 'cancelled'] as const;

/** GET /shows/{show_id}. */
export const ShowSchema = z.object({
  id: z.string().min(1),
  title: z.string().nullish(),
  description: z.string().nullable().optional(),
  status: z.string(),
  scheduled_start_at: z.string().nullable().optional(),
  created_at: z.string().nullable().optional(),
  updated_at: z.string().nullable().optional(),
  visibility: z.string().optional(),
});
export type WhatnotShow = z.infer<typeof ShowSchema>;

/**
 * POST /merchandising/products/{product_id} → the product's merchandising after the change
 * (ProductMerchandising: `transaction_type`, `reserved_for_live`, `active_in_shows`; the show ids are
 * not in it). A 2xx is the platform's acceptance, which is all a pin needs: the body is only read for
 * `active_in_shows` (a log line), and any other shape is accepted.
 */
export const MerchandisingSchema = z.unknown().transform((body): { active_in_shows: boolean | undefined } => {
  const active = body !== null && typeof body === 'object' ? (body as Record<string, unknown>).active_in_shows : undefined;
  return { active_in_shows: typeof active === 'boolean' ? active : undefined };
});

/** Money as Whatnot writes it: a plain decimal string and an ISO 4217 code. */
export const MoneySchema = z.object({
  amount: z.string().regex(/^-?\d+(\.\d+)?$/, 'a decimal amount such as "12.34"'),
  currency: z.string().regex(/^[A-Z]{3}$/, 'an ISO 4217 currency code'),
});

export const ORDER_STATUSES = ['pending', 'pending_fulfillment', 'completed', 'cancelled', 'failed'] as const;

export const OrderSchema = z.object({
  id: z.string().min(1),
  show_id: z.string().nullish(),
  status: z.string().min(1),
  transaction_type: z.string().nullish(),
  /** RFC 3339 with an offset; `Date.parse` alone read "2" as 2001-02-01 (src/lib/timestamp.ts). */
  created_at: PlatformTimestampSchema,
  updated_at: z.string().nullish(),
  cancelled_at: z.string().nullish(),
  amounts: z.object({
    subtotal: MoneySchema.nullish(),
    shipping: MoneySchema.nullish(),
    tax: MoneySchema.nullish(),
    total: MoneySchema,
    /** unconfirmed: refunded so far */
    refunded: MoneySchema.nullish(),
  }),
  // No line items: the published Order model has none (they are GET /orders/{id}/items, OrderItemsPageSchema).
});
export type WhatnotOrder = z.infer<typeof OrderSchema>;

/**
 * GET /orders (unconfirmed: `created_at_gte`, `created_at_lt`, `limit`, `cursor` → `{data, next_cursor}`).
 * An order of the list that does not fit OrderSchema but has an id is that order's problem (an
 * invalid_order of the run, report-order.ts); one without an id, or an envelope of another shape,
 * fails the page (`malformed_response`, e.g. `data.3.id`).
 */
export const OrderPageSchema = z.object({
  data: z.array(reportElement(OrderSchema, 'id')),
  next_cursor: z.string().nullish(),
});

/**
 * GET /orders/{order_id}/items: the order's line items, a separate call (the Order model has none).
 * Unconfirmed: the envelope (taken to be the other lists' `{data, next_cursor}`) and `product_id`, the
 * only field read (optional, may be null: an item without one costs the order its product, not the call).
 */
export const OrderItemsPageSchema = z.object({
  data: z.array(z.object({ product_id: z.string().nullish() })),
  next_cursor: z.string().nullish(),
});

/** Standard Webhooks body: `{type, timestamp, data, version, seller_id}`. */
export const WebhookBodySchema = z.object({
  type: z.string(),
  timestamp: z.string().optional(),
  version: z.string().optional(),
  seller_id: z.string().optional(),
  data: z.unknown(),
});

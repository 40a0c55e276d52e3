/**
 * The parts of Whatnot Seller API v2 responses and webhooks the adapter reads
 * (https://developers.whatnot.com, API reference: Shows, Merchandising, Orders; Webhooks).
 * Money is `{amount: "<decimal string>", currency}`. Fields marked "assumed" are not spelled out in
 * the public reference we could read and follow the API's conventions; they are optional so a
 * differently-shaped answer degrades (no product id, no refund figure) instead of failing.
 */
import { z } from 'zod';

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

export const SHOW_STATUSES = ['scheduled', 'live', 'ended', 'cancelled'] as const;

/** GET /shows/{show_id}. */
export const ShowSchema = z.object({
  id: z.string().min(1),
  title: z.string(),
  description: z.string().nullable().optional(),
  status: z.string(),
  scheduled_start_at: z.string().nullable().optional(),
  created_at: z.string().nullable().optional(),
  updated_at: z.string().nullable().optional(),
  visibility: z.string().optional(),
});
export type WhatnotShow = z.infer<typeof ShowSchema>;

/** POST /merchandising/products/{product_id} → the product's merchandising after the change. */
export const MerchandisingSchema = z.object({
  product_id: z.string().min(1),
  show_ids: z.array(z.string()).default([]),
  transaction_type: z.string().nullable().optional(),
  reserved_for_live: z.boolean().nullable().optional(),
});

export const MoneySchema = z.object({ amount: z.string(), currency: z.string() });

export const OrderSchema = z.object({
  id: z.string().min(1),
  show_id: z.string().nullable(),
  status: z.string(),
  transaction_type: z.string().nullable().optional(),
  created_at: z.string().nullable(),
  updated_at: z.string().nullable().optional(),
  cancelled_at: z.string().nullable().optional(),
  amounts: z.object({
    subtotal: MoneySchema.optional(),
    shipping: MoneySchema.optional(),
    tax: MoneySchema.optional(),
    total: MoneySchema,
    /** assumed: refunded so far */
    refunded: MoneySchema.optional(),
  }),
  /** assumed: the products sold in the order */
  line_items: z
    .array(z.object({ product_id: z.string().optional(), quantity: z.number().int().optional(), price: MoneySchema.optional() }))
    .optional(),
});
export type WhatnotOrder = z.infer<typeof OrderSchema>;

/** GET /orders (assumed cursor pagination: `limit`, `cursor` → `next_cursor`). */
export const OrderPageSchema = z.object({
  data: z.array(OrderSchema),
  next_cursor: z.string().nullable().optional(),
});

/** Standard Webhooks body: `{type, timestamp, data, version, seller_id}`. */
export const WebhookBodySchema = z.object({
  type: z.string(),
  timestamp: z.string().optional(),
  version: z.string().optional(),
  seller_id: z.string().optional(),
  data: z.unknown(),
});

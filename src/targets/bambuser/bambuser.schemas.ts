/**
 * The parts of Bambuser Live Video Shopping REST API ("REST API for Live", v1) responses the adapter
 * reads, and nothing more, parsed defensively: unknown fields are dropped, fields we do not rely on may
 * be missing or null, and a field we rely on that is missing or of another shape fails the parse
 * (→ PermanentError `malformed_response` naming its path, e.g. `orders.2.orderValue`).
 *
 * Field names follow the public OpenAPI description (https://liveshopping-api.bambuser.com/v1/docs/api,
 * spec at …/one-to-many/spec): Show, CreateShow, ProductModel, ShowHighlights, CreateWebhookRequest,
 * WebhookEventModel. Two shapes are not in what we could read of the public spec and are our model,
 * kept deliberately small so a difference shows up as a parse error, not as wrong numbers:
 *  - list envelopes: `{ results: [...], cursor?: string | null }` (`results` is what public client
 *    code reads from GET /shows; the cursor paging is ours);
 *  - GET /stats/show/{showId}/orders: `{ showId, orders: [{ orderId, createdAt, currency, orderValue,
 *    products: [{ productReference, quantity, price }] }] }`, i.e. the purchases the Bambuser player's
 *    conversion tracking reported for that show, with decimal amounts as the tracking call takes them.
 */
import { z } from 'zod';
import { PlatformTimestampSchema } from '../../lib/timestamp.js';
import { firstRefusalArray } from '../../lib/first-refusal.js';
import { reportElement } from '../report-order.js';

const nullableString = z.string().nullable().optional();

/** Show (GET /shows/{showId}, POST /shows, PATCH /shows/{showId}, list items). */
export const ShowSchema = z.object({
  id: z.string().min(1),
  title: nullableString,
  description: nullableString,
  /** upcoming | scheduled | live | ended */
  state: z.string(),
  isLive: z.boolean().optional(),
  published: z.boolean().optional(),
  scheduledStartAt: nullableString,
  createdAt: nullableString,
  startedAt: nullableString,
  endedAt: nullableString,
});
export type BambuserShow = z.infer<typeof ShowSchema>;

export const ShowListSchema = z.object({
  results: z.array(ShowSchema),
  cursor: nullableString,
});

/** ProductModel as attached to a show (POST/GET /shows/{showId}/products). */
export const ProductSchema = z.object({
  id: z.string().min(1),
  publicUrl: z.string(),
  productReference: nullableString,
  title: nullableString,
});
export type BambuserProduct = z.infer<typeof ProductSchema>;

export const ProductListSchema = z.object({ results: z.array(ProductSchema) });

/** ShowHighlights (beta): a moment on the show's timeline featuring products. */
export const HighlightSchema = z.object({
  id: z.string().min(1),
  startAt: z.string(),
  startRel: z.number().nullish(),
  products: z.array(z.string()),
});
export type BambuserHighlight = z.infer<typeof HighlightSchema>;

export const HighlightListSchema = z.object({ results: z.array(HighlightSchema) });

const decimalText = z.string().regex(/^-?\d+(\.\d+)?$/, 'a decimal amount such as "49.90"');

/** GET /stats/show/{showId}/orders (model, see the header comment). */
export const StatsOrderSchema = z.object({
  orderId: z.string().min(1),
  createdAt: PlatformTimestampSchema,
  currency: z.string().regex(/^[A-Z]{3}$/, 'an ISO 4217 currency code'),
  /** Decimal amount in major units as the player's conversion tracking received it (e.g. 49.9). */
  orderValue: z.union([z.number().finite(), decimalText]),
  products: z
    .array(
      z.object({
        productReference: nullableString,
        quantity: z.number().nullish(),
        price: z.union([z.number(), z.string()]).nullish(),
      }),
    )
    .nullish(),
});
export type BambuserStatsOrder = z.infer<typeof StatsOrderSchema>;

/**
 * One answer holds every order of the show (no paging): read to its first refused order
 * (firstRefusalArray). An order that does not fit StatsOrderSchema but has an `orderId` is no refusal:
 * it is that order's problem (an invalid_order of the run, report-order.ts); one without an orderId is.
 */
export const StatsOrdersSchema = z.object({ orders: firstRefusalArray(reportElement(StatsOrderSchema, 'orderId')) });

/** WebhookEventModel: the body of every webhook delivery (and of GET /webhooks/{eventId}). */
export const WebhookEventSchema = z.object({
  collection: z.string().min(1),
  action: z.string().min(1),
  payload: z.record(z.string(), z.unknown()),
  eventId: z.string().min(1),
  timestamp: z.string(),
});
export type BambuserWebhookEvent = z.infer<typeof WebhookEventSchema>;

/**
 * Error bodies. The public description does not fix one shape; Node-style `{statusCode, error,
 * message}` and `{error: {message}}` are both read, whatever is there is quoted.
 */
export const ErrorBodySchema = z.object({
  message: z.string().optional(),
  error: z.union([z.string(), z.object({ message: z.string().optional(), code: z.string().optional() })]).optional(),
  code: z.string().optional(),
});

/** DELETE answers 204 with no body. */
export const EmptySchema = z.unknown();

/**
 * The parts of TikTok Shop Open API responses the adapter reads. Every response is an envelope
 * `{code, message, request_id, data}` (code 0 = success); `data` is parsed per endpoint.
 * References (Partner Center, API version in the path): Authorization → Get access token / Refresh;
 * Affiliate Seller 202405 "Generate Affiliate Product Promotion Link"; Affiliate Seller 202410
 * "Search Seller Affiliate Orders"; Order 202309 "Get Order Detail"; Webhooks overview.
 */
import { z } from 'zod';
import { UnixSecondsSchema } from '../../lib/timestamp.js';

export const EnvelopeSchema = z.object({
  code: z.number().int(),
  message: z.string().optional(),
  request_id: z.string().optional(),
  data: z.unknown().optional(),
});
export type Envelope = z.infer<typeof EnvelopeSchema>;

/** GET auth.tiktok-shops.com/api/v2/token/refresh → data. Expiries are absolute unix seconds. */
export const TokenDataSchema = z.object({
  access_token: z.string().min(1),
  access_token_expire_in: z.number().int().positive(),
  refresh_token: z.string().min(1).optional(),
  refresh_token_expire_in: z.number().int().optional(),
  granted_scopes: z.array(z.string()).optional(),
});

/** A TikTok money object: decimal string + ISO 4217 currency. */
export const PriceSchema = z.object({ amount: z.string(), currency: z.string() });
export type Price = z.infer<typeof PriceSchema>;

/** POST /affiliate_seller/202405/products/{product_id}/promotion_link/generate → data. */
export const PromotionLinkSchema = z.object({ product_promotion_link: z.string().min(1) });

export const AffiliateSkuSchema = z.object({
  product_id: z.string().optional(),
  quantity: z.number().int().nonnegative().optional(),
  price: PriceSchema.optional(),
  content_type: z.string().optional(),
  content_id: z.string().optional(),
  creator_username: z.string().optional(),
  commission_rate: z.string().optional(),
  estimated_paid_commission: PriceSchema.optional(),
  actual_paid_commission: PriceSchema.optional(),
  refunded_quantity: z.number().int().nonnegative().optional(),
  returned_quantity: z.number().int().nonnegative().optional(),
});
export type AffiliateSku = z.infer<typeof AffiliateSkuSchema>;

export const AffiliateOrderSchema = z.object({
  id: z.string().min(1),
  status: z.string().optional(),
  create_time: UnixSecondsSchema,
  delivery_time: z.number().int().optional(),
  skus: z.array(AffiliateSkuSchema).default([]),
});
export type AffiliateOrder = z.infer<typeof AffiliateOrderSchema>;

/** POST /affiliate_seller/202410/orders/search → data. */
export const AffiliateOrderPageSchema = z.object({
  orders: z.array(AffiliateOrderSchema).default([]),
  next_page_token: z.string().optional(),
  total_count: z.number().int().optional(),
});

/** GET /order/202309/orders?ids=… → data (only what the webhook path needs: the creation time). */
export const OrderDetailSchema = z.object({
  orders: z
    .array(
      z.object({
        id: z.string().min(1),
        status: z.string().optional(),
        create_time: UnixSecondsSchema,
        update_time: z.number().int().optional(),
      }),
    )
    .default([]),
});

/**
 * Webhook body. `type` is an integer topic: 1 ORDER_STATUS_CHANGE, 11 CANCELLATION_STATUS_CHANGE,
 * 12 RETURN_STATUS_CHANGE (the order-affecting ones we act on); `data` carries ids and statuses only
 * (no amounts, no LIVE room), so the adapter looks the order up.
 */
export const WebhookBodySchema = z.object({
  type: z.number().int(),
  tts_notification_id: z.string().optional(),
  shop_id: z.string().optional(),
  timestamp: z.number().int().optional(),
  data: z
    .object({
      order_id: z.string().min(1).optional(),
      order_status: z.string().optional(),
      update_time: z.number().int().optional(),
    })
    .loose()
    .optional(),
});

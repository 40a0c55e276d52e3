/**
 * Meta's Live Shopping Tools API: pin and unpin a product of the Page's catalog on a Facebook Live,
 * and list the product items that can be pinned (developers.facebook.com/documentation/live-shopping/
 * live-shopping-tools-api). It needs `live_shopping_manage_video` (facebook.permissions.ts) and a
 * catalog connected to the Page; a product is found by its catalog `retailer_id` (the seller's SKU,
 * our `platformProductId`).
 *
 * CONFIRMED: what the API does (pin, unpin, list pinnable items), the permissions, and that one asset
 * is featured on a video at a time (the Featured Links API "reads whatever asset is currently pinned").
 * ASSUMED — no public source we could read spells them out — the edge names and shapes below:
 *   GET    /{live-video-id}/pinnable_products?fields=id,retailer_id,name  → {data: [ProductItem], paging}
 *   POST   /{live-video-id}/pinned_product  product_id={product-item-id}  → {success: true}
 *   GET    /{live-video-id}/pinned_product?fields=id,retailer_id           → {data: [ProductItem]} (empty: none)
 *   DELETE /{live-video-id}/pinned_product                                 → {success: true}
 * They live only here (LIVE_SHOPPING_EDGES) so that confirming them is a change to one file, and the
 * simulator models exactly these (src/simulators/facebook.sim.ts).
 */
import type { FacebookClient } from './facebook.client.js';
import { ProductItemListSchema, WriteResultSchema } from './facebook.schemas.js';
import { PAGES_USE_CASE } from './facebook.errors.js';

export const LIVE_SHOPPING_EDGES = { pinnable: 'pinnable_products', pinned: 'pinned_product' } as const;
/**
 * The Business Use Case these calls count under: they act on the Page's catalog items (ASSUMED, as the
 * simulator models it): a catalog throttle holds them, not the Page's live video and comments.
 */
export const LIVE_SHOPPING_USE_CASE = 'catalog_management';
/**
 * Live Shopping calls are labelled catalog_management and also wait on a `pages` block (conservative
 * while the mapping is assumed: Graph may count them under pages, and its 80001 then blocks pages).
 */
const LIVE_SHOPPING_USE_CASES = { useCase: LIVE_SHOPPING_USE_CASE, waitsOn: [PAGES_USE_CASE] } as const;
/** A catalog holds many items; we stop looking after this many pages of 100. */
const MAX_CATALOG_PAGES = 10;

export interface LiveShopping {
  /** The pinnable product item whose retailer_id (or id) is `productId`, or null when the catalog has none. */
  findProductItem(liveVideoId: string, productId: string): Promise<{ id: string } | null>;
  /**
   * Feature the item on the live video (replaces whatever was featured). Idempotent. Facebook refusing
   * the item (code 100 naming product_id) is a PinRefusedError: `productId` is the product it stands for.
   */
  pin(liveVideoId: string, productItemId: string, productId: string): Promise<void>;
  /**
   * Stop featuring the item, if it is still the featured one (a later pin replaced it otherwise). The
   * item by its id (a pin's ref), or by its retailer_id (the product's SKU) when the pin's outcome is
   * unknown (no ref: the pin request timed out or its run died): the featured item is read either way,
   * and matched as findProductItem matches one.
   */
  unpin(liveVideoId: string, item: { id: string } | { productId: string }): Promise<void>;
}

export function createLiveShopping(client: FacebookClient): LiveShopping {
  const edge = (liveVideoId: string, name: string): string => `/${encodeURIComponent(liveVideoId)}/${name}`;

  return {
    async findProductItem(liveVideoId, productId) {
      let after: string | undefined;
      for (let i = 0; i < MAX_CATALOG_PAGES; i++) {
        const page = await client.call({
          method: 'GET',
          path: edge(liveVideoId, LIVE_SHOPPING_EDGES.pinnable),
          params: { fields: 'id,retailer_id,name', limit: 100, after },
          schema: ProductItemListSchema,
          ...LIVE_SHOPPING_USE_CASES,
        });
        const hit = page.data.find((p) => p.retailer_id === productId) ?? page.data.find((p) => p.id === productId);
        if (hit) return { id: hit.id };
        const next = page.paging?.next ? page.paging.cursors?.after : undefined;
        if (!next || next === after) return null;
        after = next;
      }
      return null;
    },

    async pin(liveVideoId, productItemId, productId) {
      const pinOf = `${JSON.stringify(productId)} (catalog item ${productItemId})`;
      await client.call({ method: 'POST', path: edge(liveVideoId, LIVE_SHOPPING_EDGES.pinned), params: { product_id: productItemId }, schema: WriteResultSchema, pinOf, ...LIVE_SHOPPING_USE_CASES });
    },

    async unpin(liveVideoId, item) {
      const current = await client.call({
        method: 'GET',
        path: edge(liveVideoId, LIVE_SHOPPING_EDGES.pinned),
        params: { fields: 'id,retailer_id' },
        schema: ProductItemListSchema,
        ...LIVE_SHOPPING_USE_CASES,
      });
      const featured = 'id' in item ? (p: { id: string }) => p.id === item.id : (p: { id: string; retailer_id?: string | undefined }) => p.retailer_id === item.productId || p.id === item.productId;
      if (!current.data.some(featured)) return; // replaced, already taken down, or (no ref) never pinned
      // The read and the delete stay in one run (two requests: never done at 1 request per window). The
      // delete names no item, it takes down whatever is featured: a read recorded by an earlier run
      // (ours featured then) would take down a product the seller featured since.
      await client.call({ method: 'DELETE', path: edge(liveVideoId, LIVE_SHOPPING_EDGES.pinned), schema: WriteResultSchema, ...LIVE_SHOPPING_USE_CASES });
    },
  };
}

/**
 * The Facebook simulator's Live Shopping Tools API: pin and unpin a product of the Page's catalog on a
 * live video, list the pinnable product items (developers.facebook.com/documentation/live-shopping/
 * live-shopping-tools-api: permissions `live_shopping_manage_video` + `catalog_management` or
 * `pages_manage_posts`; one featured asset per video).
 *
 * The edges are the ones src/targets/facebook/facebook.live-shopping.ts assumes (not in any public
 * source we could read):
 *   GET    /{version}/{live-video-id}/pinnable_products  → {data: [{id, retailer_id, name}], paging}
 *   POST   /{version}/{live-video-id}/pinned_product      product_id=<item id> → {success: true}
 *   GET    /{version}/{live-video-id}/pinned_product      → {data: [item]} or {data: []}
 *   DELETE /{version}/{live-video-id}/pinned_product      → {success: true}
 * Our model where nothing is documented: a product is pinned only while the video is LIVE (code 100
 * otherwise); pinning another replaces it; an item that is not in the catalog, or whose `availability`
 * is `out of stock` or `discontinued`, is refused with code 100 naming the parameter
 * (`(#100) Param product_id …`, Graph's wording for a refused parameter) and every item is listed as
 * pinnable (the API lists "product items eligible for pinning"; which items are not is not public);
 * effects `product.pinned` / `product.unpinned` name the item's retailer_id (the seller's product id).
 * The catalog is set with `PUT /_sim/facebook/catalog {items: [{retailer_id, name?, availability?}]}`
 * (empty by default; availability `in stock` unless given).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { FbPermissions } from './facebook-access.sim.js';
import { fieldsOf, invalidParam, numericId, pageOfList, paramsOf } from './facebook-graph.sim.js';
import type { SimPlatform } from './sim.platform.js';

/** A catalog item's `availability` (Meta's catalog field values). */
export const FB_AVAILABILITY = ['in stock', 'out of stock', 'preorder', 'available for order', 'discontinued'] as const;
export type FbAvailability = (typeof FB_AVAILABILITY)[number];
/** What cannot be featured on a live video: nobody could buy it (our model). */
const UNSELLABLE: ReadonlySet<string> = new Set<FbAvailability>(['out of stock', 'discontinued']);

export interface FbProductItem {
  id: string;
  retailer_id: string;
  name: string;
  availability: FbAvailability;
}

/** The part of a simulated live video that Live Shopping reads and changes. */
export interface FbShoppingVideo {
  id: string;
  status: string;
  pinnedItem: string | undefined;
}

export class FbCatalog {
  private readonly items = new Map<string, FbProductItem>();

  /** Replaces the catalog; an item keeps its id when its retailer_id was there before. */
  set(items: ReadonlyArray<{ retailer_id: string; name?: string | undefined; availability?: FbAvailability | undefined }>): FbProductItem[] {
    const before = new Map(this.items);
    this.items.clear();
    for (const i of items) {
      this.items.set(i.retailer_id, {
        id: before.get(i.retailer_id)?.id ?? numericId(),
        retailer_id: i.retailer_id,
        name: i.name ?? i.retailer_id,
        availability: i.availability ?? 'in stock',
      });
    }
    return this.list();
  }

  list(): FbProductItem[] {
    return [...this.items.values()];
  }

  byId(id: string): FbProductItem | undefined {
    return this.list().find((i) => i.id === id);
  }

  clear(): void {
    this.items.clear();
  }
}

/** Is `path` one of the Live Shopping edges below (`/{version}/{live-video-id}/pinnable_products|pinned_product`)? */
export function isLiveShoppingPath(path: string): boolean {
  return /\/(?:pinnable_products|pinned_product)\/?$/.test(path);
}

const ITEM_FIELDS = new Set(['id', 'retailer_id', 'name', 'availability']);
const LIVE_SHOPPING = 'live_shopping_manage_video';
const ALSO_ONE_OF = ['catalog_management', 'pages_manage_posts'];

export interface LiveShoppingDeps {
  sim: SimPlatform;
  catalog: FbCatalog;
  permissions: FbPermissions;
  tokenOf(req: FastifyRequest): string;
  /** The live video (throws Graph's unsupported-request error for an unknown id). */
  liveVideo(id: string, verb: 'get' | 'post' | 'delete', req: FastifyRequest): FbShoppingVideo;
}

export function registerLiveShopping(api: FastifyInstance, deps: LiveShoppingDeps): void {
  const { sim, catalog, permissions } = deps;
  type IdParams = { version: string; id: string };

  function render(item: FbProductItem, fields: string[]): Record<string, unknown> {
    return Object.fromEntries(fields.map((f) => [f, item[f as keyof FbProductItem]]));
  }

  function allowed(req: FastifyRequest): void {
    permissions.require(deps.tokenOf(req), [LIVE_SHOPPING], ALSO_ONE_OF);
  }

  api.get('/:version/:id/pinnable_products', async (req) => {
    allowed(req);
    deps.liveVideo((req.params as IdParams).id, 'get', req);
    const p = paramsOf(req);
    const fields = fieldsOf(p, ITEM_FIELDS, ['id', 'retailer_id', 'name'], 'ProductItem');
    const page = pageOfList(catalog.list(), p, 25);
    return { ...page, data: page.data.map((i) => render(i, fields)) };
  });

  api.get('/:version/:id/pinned_product', async (req) => {
    allowed(req);
    const v = deps.liveVideo((req.params as IdParams).id, 'get', req);
    const fields = fieldsOf(paramsOf(req), ITEM_FIELDS, ['id'], 'ProductItem');
    const item = v.pinnedItem ? catalog.byId(v.pinnedItem) : undefined;
    return { data: item ? [render(item, fields)] : [] };
  });

  api.post('/:version/:id/pinned_product', async (req) => {
    allowed(req);
    const v = deps.liveVideo((req.params as IdParams).id, 'post', req);
    const { product_id: productId } = paramsOf(req);
    if (!productId) throw invalidParam('(#100) The parameter product_id is required');
    const item = catalog.byId(productId);
    // Graph names the parameter it refuses ("(#100) Param <name> …"): the product's refusals name product_id.
    if (!item) throw invalidParam(`(#100) Param product_id must be a product item in a catalog connected to this Page (${productId} is not)`);
    if (v.status !== 'LIVE') throw invalidParam('(#100) Products can be pinned while the live video is live');
    if (UNSELLABLE.has(item.availability)) {
      throw invalidParam(`(#100) Param product_id: product item ${item.id} (retailer_id ${item.retailer_id}) is ${item.availability} and cannot be pinned`, undefined, 'This product is not available to buy, so it cannot be featured on your live video.');
    }
    if (v.pinnedItem === item.id) return { success: true };
    const previous = v.pinnedItem ? catalog.byId(v.pinnedItem) : undefined;
    if (previous) sim.recordEffect({ type: 'product.unpinned', externalId: v.id, productId: previous.retailer_id });
    v.pinnedItem = item.id;
    sim.recordEffect({ type: 'product.pinned', externalId: v.id, productId: item.retailer_id });
    return { success: true };
  });

  api.delete('/:version/:id/pinned_product', async (req) => {
    allowed(req);
    const v = deps.liveVideo((req.params as IdParams).id, 'delete', req);
    const item = v.pinnedItem ? catalog.byId(v.pinnedItem) : undefined;
    v.pinnedItem = undefined;
    if (item) sim.recordEffect({ type: 'product.unpinned', externalId: v.id, productId: item.retailer_id });
    return { success: true };
  });
}

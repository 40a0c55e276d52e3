/**
 * A show's desired state as last-writer-wins registers (ARCHITECTURE "Desired state, not event
 * replay"). Each event writes one register with an order key `occurredAt|webhookId` (orderKey); a register only
 * moves forward, so late and duplicate events cannot roll anything back, and any permutation of the
 * same events gives the same registers. `deriveDesired` turns the registers into what the mirror
 * worker drives the targets to. Pure: no I/O.
 */
import { isPlainObject } from '../store/stored-record.js';
import { impliedState, SHOW_STATES, type PartnerEvent, type Product, type Show, type ShowState } from './events.js';

export interface RegisterWrite {
  field: string;
  value: string;
}

/** The fraction of a Timestamp's seconds (digits after the '.'), before its `Z` or offset. */
const FRACTION = /\.(\d+)(?:[Zz]|[+-]\d{2}:\d{2})$/;

/**
 * Sortable, deterministic order key: zero-padded epoch ms, the six fraction digits below the
 * millisecond (microseconds and nanoseconds, zeros when not given), then the webhook id as tie-break.
 * Date.parse keeps milliseconds only, and partners' clocks often say more (Python's isoformat, Java's
 * Instant, Go's RFC3339Nano): with milliseconds alone two events of one show in the same millisecond
 * were ordered by their webhook ids, so a show.ended 800 µs after a show.live could lose to it.
 * Digits past the nanosecond do not count (those events tie, and the webhook id decides). A time
 * before 1970 (negative ms) is `-` and the 15-digit complement 10^15 + ms (ms is floored, so the
 * sub-millisecond digits still count upwards): '-' sorts before every digit and a later time has the
 * larger complement, so the text order is the time order on both sides (ISO years 0000–9999 stay well
 * inside 10^15 ms) in byte order. The event edge refuses times before 1970 (src/domain/events.ts
 * OccurredAt): Redis' Lua compares these keys with strcoll(), and under a non-C collation '-' and '|'
 * do not count at the first level. Keys stored before the sub-millisecond digits (`<15 digits>|…`)
 * still order right against these whenever the milliseconds differ.
 */
export function orderKey(occurredAt: string, webhookId: string): string {
  const ms = Date.parse(occurredAt);
  const subMs = (FRACTION.exec(occurredAt)?.[1] ?? '').slice(3, 9).padEnd(6, '0');
  const time = ms >= 0 ? String(ms).padStart(15, '0') : `-${String(1e15 + ms).padStart(15, '0')}`;
  return `${time}${subMs}|${webhookId}`;
}

/** The register an event writes (show events only; order events are not desired state). */
export function registerFor(ev: PartnerEvent): { showId: string; write: RegisterWrite } | null {
  switch (ev.type) {
    case 'show.scheduled':
    case 'show.updated':
    case 'show.live':
    case 'show.ended':
    case 'show.cancelled': {
      const show: Show = { ...ev.data.show, state: impliedState(ev) ?? ev.data.show.state };
      return { showId: show.id, write: { field: 'snap', value: JSON.stringify(show) } };
    }
    case 'product.pinned':
    case 'product.unpinned':
      return { showId: ev.data.showId, write: { field: `pin:${ev.data.productId}`, value: ev.type === 'product.pinned' ? '1' : '0' } };
    case 'product.updated':
      return { showId: ev.data.showId, write: { field: `prod:${ev.data.product.id}`, value: JSON.stringify(ev.data.product) } };
    default:
      return null;
  }
}

export interface DesiredShow {
  showId: string;
  version: number;
  title: string;
  description: string | undefined;
  scheduledAt: string;
  state: ShowState;
  sourceUrl: string | undefined;
  products: Map<string, Product>;
  /** Products the partner currently has pinned (effective per product: newest of snapshot and pin events). */
  pinned: Set<string>;
  /** Every product that was ever mentioned as pinned or unpinned (for reporting pin state). */
  pinUniverse: Set<string>;
}

/** The registers `productOf` reads (HMGET of the desired hash), in this order. */
export function productFields(productId: string): string[] {
  return ['snap', 'snap@', `prod:${productId}`, `prod:${productId}@`];
}

/**
 * One product as deriveDesired would give it, from just the registers of `productFields` (the
 * tracked-link redirect reads this instead of the whole show): a `product.updated` newer than the
 * snapshot wins, otherwise the snapshot's version (the last one listed under that id, like deriveDesired:
 * a snapshot may list an id twice); undefined when the show has no such product.
 */
export function productOf(productId: string, values: (string | null | undefined)[]): Product | undefined {
  const [snapRaw, snapKey = '', prodRaw, prodKey] = values;
  if (!snapRaw) return undefined;
  if (prodRaw && prodKey && (snapKey ?? '') < prodKey) return JSON.parse(prodRaw) as Product;
  // The last of a repeated id, as deriveDesired (a Map) takes it: the link must go where the mirror pinned.
  return (JSON.parse(snapRaw) as Show).products.findLast((p) => p.id === productId);
}

// null too: a record stored before nulls were dropped at the edge (nullAsAbsent) reads as before.
const isOptionalString = (v: unknown): boolean => v === undefined || v === null || typeof v === 'string';

/**
 * A stored product register (`prod:<id>`, or one of a snapshot's products) of the shape the readers use:
 * a check of the fields, not the event schema (the event was validated when it came in; this catches a
 * hand edit or a half-migrated key, whose `null`, number or object without its price threw TypeErrors).
 */
export function isStoredProduct(v: unknown): v is Product {
  return isPlainObject(v) && typeof v['id'] === 'string' && typeof v['title'] === 'string' && typeof v['url'] === 'string' && isPlainObject(v['price']) && Number.isInteger(v['price']['amount']) && typeof v['price']['currency'] === 'string' && isOptionalString(v['imageUrl']) && isOptionalString(v['sku']);
}

/** A stored show snapshot (`snap`) of the shape deriveDesired reads (isStoredProduct's rule). */
export function isStoredShow(v: unknown): v is Show {
  return (
    isPlainObject(v) &&
    typeof v['title'] === 'string' &&
    typeof v['scheduledAt'] === 'string' &&
    (SHOW_STATES as readonly unknown[]).includes(v['state']) &&
    isOptionalString(v['description']) &&
    isOptionalString(v['sourceUrl']) &&
    Array.isArray(v['products']) &&
    v['products'].every(isStoredProduct) &&
    // Absent reads as none (new Set(undefined)), as before the schema's default.
    (v['pinnedProductIds'] === undefined || (Array.isArray(v['pinnedProductIds']) && v['pinnedProductIds'].every((id) => typeof id === 'string')))
  );
}

/**
 * Registers as read with HGETALL. Returns null until the first show snapshot has arrived. `parseSnap`:
 * how the snapshot's text becomes a Show (a caller may reuse an earlier parse of the same text: the
 * result is only read, never changed).
 */
export function deriveDesired(
  showId: string,
  h: Record<string, string>,
  parseSnap: (raw: string) => Show = (raw) => JSON.parse(raw) as Show,
  parseProduct: (raw: string) => Product = (raw) => JSON.parse(raw) as Product,
): DesiredShow | null {
  const snapRaw = h['snap'];
  if (!snapRaw) return null;
  const snap = parseSnap(snapRaw);
  const snapKey = h['snap@'] ?? '';
  const products = new Map<string, Product>();
  const productKeys = new Map<string, string>();
  for (const p of snap.products) {
    products.set(p.id, p);
    productKeys.set(p.id, snapKey);
  }
  const pinned = new Set<string>();
  const universe = new Set<string>(snap.pinnedProductIds);
  const snapPinned = new Set(snap.pinnedProductIds);
  for (const [field, value] of Object.entries(h)) {
    if (field.endsWith('@')) continue;
    if (field.startsWith('prod:')) {
      const key = h[`${field}@`] ?? '';
      const id = field.slice(5);
      // A product update older than the snapshot loses to it, also when the snapshot dropped the product.
      if ((productKeys.get(id) ?? snapKey) < key) {
        products.set(id, parseProduct(value));
        productKeys.set(id, key);
      }
    } else if (field.startsWith('pin:')) {
      universe.add(field.slice(4));
    }
  }
  for (const id of universe) {
    const pinKey = h[`pin:${id}@`];
    const isPinned = pinKey !== undefined && pinKey > snapKey ? h[`pin:${id}`] === '1' : snapPinned.has(id);
    if (isPinned) pinned.add(id);
  }
  return {
    showId,
    version: Number(h['v'] ?? 0),
    title: snap.title,
    description: snap.description,
    scheduledAt: snap.scheduledAt,
    state: snap.state,
    sourceUrl: snap.sourceUrl,
    products,
    pinned,
    pinUniverse: universe,
  };
}

/**
 * Tracked links (docs/attribution.md). A code is derived from (partner, show, target, product) with a keyed
 * hash, so it is unique per triple, the same on every retry (no race, no index), and unguessable.
 */
import type { SecretBox } from '../lib/crypto.js';
import { sortableId } from '../lib/ids.js';
import type { Keys } from '../store/keys.js';
import type { RedisClient } from '../store/redis.js';
import type { Platform } from '../targets/target.adapter.js';

export interface LinkRecord {
  code: string;
  partnerId: string;
  showId: string;
  targetId: string;
  platform: Platform;
  productId: string;
  url: string;
}

export interface ClickRecord {
  id: string;
  code: string;
  partnerId: string;
  showId: string;
  targetId: string;
  platform: Platform;
  productId: string;
  at: string;
  /** Salted hash of the client IP (never the IP itself). */
  ipHash: string;
}

const CLICK_TTL_SEC = 400 * 24 * 3600;
const LINK_CACHE_MS = 5000;
const LINK_CACHE_MAX = 100_000;

/** Crawlers and link unfurlers that fetch links without a human behind them. */
const BOT_UA = /bot|crawler|spider|slurp|facebookexternalhit|facebot|embedly|preview|whatsapp|telegram|discord|slack|twitterbot|linkedin|skypeuripreview|headless|curl\/|wget|python-requests|go-http-client/i;

export function isBot(method: string, userAgent: string | undefined, purpose: string | undefined): boolean {
  if (method === 'HEAD') return true;
  if (purpose && /prefetch|preview/i.test(purpose)) return true;
  return userAgent !== undefined && BOT_UA.test(userAgent);
}

/** Where a click goes: `productUrl` is the product's current URL (the link's stored one when the show no longer has it). */
export function redirectUrl(link: LinkRecord, clickId: string | undefined, productUrl: string = link.url): string {
  const u = new URL(productUrl);
  if (clickId) u.searchParams.set('sclid', clickId);
  u.searchParams.set('utm_source', link.platform);
  u.searchParams.set('utm_medium', 'live');
  u.searchParams.set('utm_campaign', link.showId);
  return u.toString();
}

export class LinkService {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly box: SecretBox,
    private readonly publicBaseUrl: string,
  ) {}

  code(partnerId: string, showId: string, targetId: string, productId: string): string {
    return this.box.mac(`link\u0000${partnerId}\u0000${showId}\u0000${targetId}\u0000${productId}`).subarray(0, 12).toString('base64url');
  }

  urlFor(code: string): string {
    return `${this.publicBaseUrl}/l/${code}`;
  }

  /** Creates or refreshes the link (its fallback URL); idempotent. Returns the tracked URL. */
  async ensure(l: Omit<LinkRecord, 'code'>): Promise<string> {
    const code = this.code(l.partnerId, l.showId, l.targetId, l.productId);
    const link: LinkRecord = { ...l, code };
    await this.redis.set(this.keys.link(code), JSON.stringify(link));
    if (this.cache.has(code)) this.cache.set(code, { link, at: Date.now() });
    return this.urlFor(code);
  }

  /**
   * Link records are read on every redirect; what they say about (partner, show, target, product)
   * never changes, so each API process keeps them for LINK_CACHE_MS. The product URL a click goes
   * to is not taken from here but from the show's desired state at the time of the click (see
   * links.routes.ts); the stored `url` is only the fallback for a product the show no longer has.
   */
  private readonly cache = new Map<string, { link: LinkRecord; at: number }>();

  async find(code: string): Promise<LinkRecord | null> {
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(code)) return null;
    const now = Date.now();
    const hit = this.cache.get(code);
    if (hit && now - hit.at < LINK_CACHE_MS) return hit.link;
    const raw = await this.redis.get(this.keys.link(code));
    if (!raw) return null;
    const link = JSON.parse(raw) as LinkRecord;
    if (this.cache.size >= LINK_CACHE_MAX) this.cache.clear();
    this.cache.set(code, { link, at: now });
    return link;
  }

  async recordClick(link: LinkRecord, ip: string, now = Date.now()): Promise<ClickRecord> {
    const click: ClickRecord = {
      id: sortableId('clk_', now),
      code: link.code,
      partnerId: link.partnerId,
      showId: link.showId,
      targetId: link.targetId,
      platform: link.platform,
      productId: link.productId,
      at: new Date(now).toISOString(),
      ipHash: this.box.mac(`ip\u0000${ip}`).subarray(0, 16).toString('base64url'),
    };
    const json = JSON.stringify(click);
    await Promise.all([
      this.redis.set(this.keys.click(click.id), json, 'EX', CLICK_TTL_SEC),
      this.redis.xadd(this.keys.partnerClicks(link.partnerId), 'MAXLEN', '~', '1000000', '*', 'click', json),
    ]);
    return click;
  }

  async findClick(clickId: string): Promise<ClickRecord | null> {
    const raw = await this.redis.get(this.keys.click(clickId));
    return raw ? (JSON.parse(raw) as ClickRecord) : null;
  }
}

/**
 * Partner-wide `webhook-id` dedupe (the external contract §3: a repeated webhook-id gets `200 duplicate:true` and no
 * second effect, whichever show or order it names). Each partner event is stored by one atomic Lua
 * step in its show's (or order's) slot, with an inbox key for its webhook-id there; a second key per
 * (partner, webhook-id) checked inside that script would be cross-slot on Redis Cluster. So the id is
 * claimed first, on its own key (its own hash tag: one key, one slot, cluster-safe), with a plain
 * `SET NX`; the claim's value names the scope it was made for (`show:<id>` / `order:<id>`).
 *
 * The claim is the fence, not the record: the scope's own inbox (written by the atomic step) still
 * says whether the event is stored. A delivery whose claim names its own scope goes on to the atomic
 * step — which stores it, or finds it stored (duplicate) — so a process that died between the claim
 * and the write loses nothing: the partner's retry carries the same id and scope and completes it.
 * A delivery whose id was claimed for another scope is a duplicate and changes nothing.
 */
import type { Keys } from './keys.js';
import type { RedisClient } from './redis.js';

export class WebhookIdClaims {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly ttlSec: number,
  ) {}

  /** Claims `webhookId` for `scope` unless it is claimed already; returns the scope that holds it. */
  async claim(partnerId: string, webhookId: string, scope: string): Promise<string> {
    const key = this.keys.partnerWebhookId(partnerId, webhookId);
    for (let i = 0; i < 3; i++) {
      if ((await this.redis.set(key, scope, 'EX', this.ttlSec, 'NX')) === 'OK') return scope;
      const holder = await this.redis.get(key);
      if (holder !== null) return holder;
      // expired between SET NX and GET: claim again
    }
    throw new Error('webhook-id claim did not settle');
  }

  /** The event id stored under `webhookId` in the scope that claimed it (null while not stored). */
  async storedEventId(partnerId: string, webhookId: string, scope: string): Promise<string | null> {
    const sep = scope.indexOf(':');
    const kind = scope.slice(0, sep);
    const id = scope.slice(sep + 1);
    if (kind === 'show') return this.redis.get(this.keys.showInbox(partnerId, id, webhookId));
    if (kind === 'order') return this.redis.get(this.keys.orderInbox(partnerId, id, webhookId));
    return null;
  }
}

export function showScope(showId: string): string {
  return `show:${showId}`;
}
export function orderScope(orderId: string): string {
  return `order:${orderId}`;
}

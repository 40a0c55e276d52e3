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
 *
 * That is the Redis Cluster path. On a single Redis the claim is made inside the event's own store
 * script (INGEST_SHOW_ONE_LUA, INGEST_ORDER_ONE_LUA in src/store/show.repository.ts), with the same
 * key and rule, so claim and write are one step there.
 */
import { Cluster } from 'ioredis';
import type { Keys } from './keys.js';
import { DEL_IF_HELD_LUA } from './lua-held.js';
import { evalOnNode, NodeBatches, nodeBatchLua, nodeScript } from './node-batch.js';
import type { RedisClient } from './redis.js';

/**
 * The claims waiting for one master of a Cluster, as one call on its connection (keys of many slots:
 * none declared, the `allow-cross-slot-keys` flag; src/store/node-batch.ts). Per claim
 * (a = 3(i-1)): ARGV[a+1] claim key, ARGV[a+2] scope, ARGV[a+3] ttl s. The reply per claim is the
 * scope that holds the id (claim()'s rule in one step: GET, and SET when nobody holds it); a key this
 * node does not serve answers an error of its own (under pcall, before anything is written) and is
 * claimed again through the Cluster client.
 */
const NODE_CLAIMS_LUA = `#!lua flags=allow-cross-slot-keys
local function claim(a)
  local holder = redis.call('GET', ARGV[a + 1])
  if holder then return holder end
  redis.call('SET', ARGV[a + 1], ARGV[a + 2], 'EX', tonumber(ARGV[a + 3]))
  return ARGV[a + 2]
end
${nodeBatchLua('claim', 3)}`;
const NODE_CLAIMS = nodeScript(NODE_CLAIMS_LUA);
/** Claims per NODE_CLAIMS call (bounds how long one call holds Redis). */
const CLAIMS_PER_CALL = 64;

interface PendingClaim {
  partnerId: string;
  webhookId: string;
  key: string;
  scope: string;
  resolve: (holder: string) => void;
  reject: (err: unknown) => void;
}

export class WebhookIdClaims {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly ttlSec: number,
  ) {
    if (redis instanceof Cluster) {
      // On a Cluster the claims of concurrent deliveries that one master serves go to it as one call
      // (one command and reply per master's batch instead of a SET NX, and a GET for a taken id, each
      // through the Cluster client). A claim the master could not take (its slot moved), or of a call
      // that failed as a whole, is made again the ordinary way: a claim is idempotent for its scope.
      this.nodeClaims = new NodeBatches<PendingClaim, (string | Error)[]>(redis, {
        maxPerCall: CLAIMS_PER_CALL,
        maxInFlight: 1,
        send: (node, batch) => {
          const args = new Array<string | number>(3 * batch.length);
          for (let i = 0; i < batch.length; i++) {
            const c = batch[i]!;
            args[3 * i] = c.key;
            args[3 * i + 1] = c.scope;
            args[3 * i + 2] = this.ttlSec;
          }
          return evalOnNode<(string | Error)[]>(node, NODE_CLAIMS, 0, args);
        },
        deliver: (batch, replies) => {
          for (let i = 0; i < batch.length; i++) {
            const c = batch[i]!;
            const r = replies[i];
            if (typeof r === 'string') c.resolve(r);
            else this.claimApart(c);
          }
        },
        fail: (batch) => {
          for (const c of batch) this.claimApart(c);
        },
      });
    }
  }

  private readonly nodeClaims: NodeBatches<PendingClaim, (string | Error)[]> | undefined;

  private claimApart(c: PendingClaim): void {
    this.claimOne(c.partnerId, c.webhookId, c.scope).then(c.resolve, c.reject);
  }

  /**
   * The key of `webhookId`'s claim: on a Redis Cluster, where claim() returns, a WAIT on that key's
   * master covers the claim (ReplicaAck.confirmKey).
   */
  claimKey(partnerId: string, webhookId: string): string {
    return this.keys.partnerWebhookId(partnerId, webhookId);
  }

  /** Claims `webhookId` for `scope` unless it is claimed already; returns the scope that holds it. */
  claim(partnerId: string, webhookId: string, scope: string): Promise<string> {
    const batches = this.nodeClaims;
    if (batches === undefined) return this.claimOne(partnerId, webhookId, scope);
    const key = this.keys.partnerWebhookId(partnerId, webhookId);
    return new Promise<string>((resolve, reject) => {
      const c: PendingClaim = { partnerId, webhookId, key, scope, resolve, reject };
      if (!batches.add(key, c)) this.claimApart(c);
    });
  }

  /** One claim through the client: SET NX, and the holder read when the id is taken. */
  private async claimOne(partnerId: string, webhookId: string, scope: string): Promise<string> {
    const key = this.keys.partnerWebhookId(partnerId, webhookId);
    for (let i = 0; i < 3; i++) {
      if ((await this.redis.set(key, scope, 'EX', this.ttlSec, 'NX')) === 'OK') return scope;
      const holder = await this.redis.get(key);
      if (holder !== null) return holder;
      // expired between SET NX and GET: claim again
    }
    throw new Error('webhook-id claim did not settle');
  }

  /**
   * Removes `webhookId`'s claim while it still names `scope` (compare and delete in one step): for an
   * event its scope refused before anything of it was stored (a full show on a Cluster, where the claim
   * comes first), so the partner may send it under the same id elsewhere. A claim another scope holds,
   * or one made again since, is left alone. True when this call removed it.
   */
  async releaseIfHeld(partnerId: string, webhookId: string, scope: string): Promise<boolean> {
    return (await this.redis.eval(DEL_IF_HELD_LUA, 1, this.keys.partnerWebhookId(partnerId, webhookId), scope)) === 1;
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

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
 *
 * A Cluster delivery refused after its claim (nothing stored, 422: its show is full, or its refund's
 * id is held by another order) takes the claim back (releaseIfHeld), so the partner may send the
 * event elsewhere under the id. Two different events under one id to one scope at once both pass the
 * claim (it names their scope): one refused, the other (an event for a register the show has, another
 * event of the order) stored. The claim only named the scope, so the refused one's release deleted
 * the claim the stored one relies on, and the id was free for a second event elsewhere. So every
 * Cluster delivery (show or order) claims with a token of its own, kept in a set beside the claim
 * (its slot; partnerWebhookIdHeld) while it is under way, and the release deletes the claim only when
 * no other token is left: when every delivery that passed the claim was refused. A token joins only a
 * set that has tracked the claim since it was made; an untracked claim (the set expired, a claim made
 * without a token) is never released — the old answer, a 409 for the id elsewhere, never a second event.
 *
 * The set is also what tells a claim under way from one whose delivery failed: a Cluster order
 * delivery that finds the id claimed for another order whose event is not stored takes the claim over
 * (takeOver) when the set has expired — nobody passed the claim for heldTtlSec (CLAIM_PROVISIONAL_SEC),
 * and each order delivery sends its write within half of that after passing (IngestService; a show
 * delivery has no such deadline, so a show's claim is never taken over): a write that
 * failed, its release failed too, blocks the id for seconds, not INBOX_TTL_DAYS. A delivery that
 * passes a claim no set tracks makes one marked UNTRACKED (never released, but under way).
 */
import { Cluster } from 'ioredis';
import type { Keys } from './keys.js';
import { evalOnNode, NodeBatches, nodeBatchLua, nodeScript } from './node-batch.js';
import type { RedisClient } from './redis.js';

/**
 * How long a claim's set of delivery tokens lives after its last join: it only has to outlast a
 * delivery's claim → write → release (seconds); a release after it expired leaves the claim (safe).
 * Every Cluster partner event (show or order) leaves one such set until then (a stored delivery does
 * not release), so the TTL is also their memory: at 2,000 events/s, about 120,000 small sets (≈ 30 MB
 * over the masters). It is the default of CLAIM_PROVISIONAL_SEC (WebhookIdClaims.heldTtlSec).
 */
export const WEBHOOK_ID_HELD_TTL_SEC = 60;

/**
 * The member that marks a held set made by a delivery that passed a claim no set tracked (it expired,
 * or the claim was made without a token): the set then does not know every delivery that passed, so
 * it never lets a release delete the claim (RELEASE_HELD_LUA finds it non-empty), but while it lives
 * it still says a delivery is under way (TAKE_OVER_LUA waits).
 */
const UNTRACKED = '*';

/**
 * Lua: claim()'s rule for one claim (`key`, for `scope`, `ttl` s), returning the scope that holds it.
 * With a `token` (not ''), a delivery that passes the claim is tracked in `held`: the set is made
 * anew with the claim, and joined by a delivery of the same scope only while it exists (it has then
 * tracked every delivery since the claim was made).
 */
function claimLua(key: string, scope: string, ttl: string, held: string, token: string, heldTtl: string): string {
  return `local holder = redis.call('GET', ${key})
if holder then
  if holder == ${scope} and ${token} ~= '' then
    if redis.call('EXISTS', ${held}) == 0 then redis.call('SADD', ${held}, '${UNTRACKED}') end
    redis.call('SADD', ${held}, ${token})
    redis.call('EXPIRE', ${held}, tonumber(${heldTtl}))
  end
  return holder
end
redis.call('SET', ${key}, ${scope}, 'EX', tonumber(${ttl}))
if ${token} ~= '' then
  redis.call('DEL', ${held})
  redis.call('SADD', ${held}, ${token})
  redis.call('EXPIRE', ${held}, tonumber(${heldTtl}))
end
return ${scope}
`;
}

/** KEYS: claim, held set. ARGV: scope, ttl s, token, held set's ttl s. claimLua through the client. */
const CLAIM_LUA = claimLua('KEYS[1]', 'ARGV[1]', 'ARGV[2]', 'KEYS[2]', 'ARGV[3]', 'ARGV[4]');

/**
 * KEYS: claim, held set. ARGV: the holder read before (another scope), scope, ttl s, token, held
 * set's ttl s. Takes over a claim whose event was never stored (the caller read the holder's inbox
 * empty just before): only while it still names `holder` and no delivery of it is tracked (its held
 * set expired: none passed the claim within WEBHOOK_ID_HELD_TTL_SEC, and each sends its store within
 * half of that after passing, IngestService). Then claims as claimLua; returns the scope that holds it.
 */
const TAKE_OVER_LUA = `if redis.call('GET', KEYS[1]) == ARGV[1] and redis.call('EXISTS', KEYS[2]) == 0 then redis.call('DEL', KEYS[1]) end
${claimLua('KEYS[1]', 'ARGV[2]', 'ARGV[3]', 'KEYS[2]', 'ARGV[4]', 'ARGV[5]')}`;

/**
 * KEYS: claim, held set. ARGV: scope, token. Drops `token` from the set; deletes the claim when that
 * left the set empty and the claim still names `scope`: 1 when this call deleted it, else 0 (the
 * token was not tracked, another delivery under the claim may store, or another scope holds it).
 */
const RELEASE_HELD_LUA = `
if redis.call('SREM', KEYS[2], ARGV[2]) == 0 then return 0 end
if redis.call('SCARD', KEYS[2]) > 0 then return 0 end
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/**
 * The claims waiting for one master of a Cluster, as one call on its connection (keys of many slots:
 * none declared, the `allow-cross-slot-keys` flag; src/store/node-batch.ts). Per claim
 * (a = 6(i-1)): ARGV[a+1] claim key, ARGV[a+2] scope, ARGV[a+3] ttl s, ARGV[a+4] held set, ARGV[a+5]
 * token ('' for none), ARGV[a+6] the held set's ttl s. The reply per claim is the scope that holds the id (claimLua: claim()'s rule
 * in one step: GET, and SET when nobody holds it); a key this
 * node does not serve answers an error of its own (under pcall, before anything is written) and is
 * claimed again through the Cluster client.
 */
const NODE_CLAIMS_LUA = `#!lua flags=allow-cross-slot-keys
local function claim(a)
${claimLua('ARGV[a + 1]', 'ARGV[a + 2]', 'ARGV[a + 3]', 'ARGV[a + 4]', 'ARGV[a + 5]', 'ARGV[a + 6]')}end
${nodeBatchLua('claim', 6)}`;
const NODE_CLAIMS = nodeScript(NODE_CLAIMS_LUA);
/** Claims per NODE_CLAIMS call (bounds how long one call holds Redis). */
const CLAIMS_PER_CALL = 64;

interface PendingClaim {
  partnerId: string;
  webhookId: string;
  key: string;
  scope: string;
  token: string;
  resolve: (holder: string) => void;
  reject: (err: unknown) => void;
}

export class WebhookIdClaims {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly ttlSec: number,
    /** How long a claim's set of delivery tokens lives after its last join (WEBHOOK_ID_HELD_TTL_SEC; CLAIM_PROVISIONAL_SEC). */
    readonly heldTtlSec: number = WEBHOOK_ID_HELD_TTL_SEC,
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
          const args = new Array<string | number>(6 * batch.length);
          for (let i = 0; i < batch.length; i++) {
            const c = batch[i]!;
            args[6 * i] = c.key;
            args[6 * i + 1] = c.scope;
            args[6 * i + 2] = this.ttlSec;
            args[6 * i + 3] = this.keys.partnerWebhookIdHeld(c.partnerId, c.webhookId);
            args[6 * i + 4] = c.token;
            args[6 * i + 5] = this.heldTtlSec;
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
    this.claimOne(c.partnerId, c.webhookId, c.scope, c.token).then(c.resolve, c.reject);
  }

  /**
   * The key of `webhookId`'s claim: on a Redis Cluster, where claim() returns, a WAIT on that key's
   * master covers the claim (ReplicaAck.confirmKey).
   */
  claimKey(partnerId: string, webhookId: string): string {
    return this.keys.partnerWebhookId(partnerId, webhookId);
  }

  /**
   * Claims `webhookId` for `scope` unless it is claimed already; returns the scope that holds it. With
   * a `token` (unique to the delivery), a delivery that passes the claim is tracked for
   * releaseIfHeld(…, token).
   */
  claim(partnerId: string, webhookId: string, scope: string, token = ''): Promise<string> {
    const batches = this.nodeClaims;
    if (batches === undefined) return this.claimOne(partnerId, webhookId, scope, token);
    const key = this.keys.partnerWebhookId(partnerId, webhookId);
    return new Promise<string>((resolve, reject) => {
      const c: PendingClaim = { partnerId, webhookId, key, scope, token, resolve, reject };
      if (!batches.add(key, c)) this.claimApart(c);
    });
  }

  /** One claim through the client: SET NX, and the holder read when the id is taken (CLAIM_LUA with a token). */
  private async claimOne(partnerId: string, webhookId: string, scope: string, token: string): Promise<string> {
    const key = this.keys.partnerWebhookId(partnerId, webhookId);
    if (token !== '') return (await this.redis.eval(CLAIM_LUA, 2, key, this.keys.partnerWebhookIdHeld(partnerId, webhookId), scope, this.ttlSec, token, this.heldTtlSec)) as string;
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
   * event its scope refused before anything of it was stored (on a Cluster, where the claim comes
   * first: a full show, a refund whose id another order holds), so the partner may send it under the
   * same id elsewhere. `token` is the one the claim was made or passed with: the claim goes only when
   * no other delivery that passed it is tracked (RELEASE_HELD_LUA). A claim another scope holds, one
   * made again since, or one not tracked is left alone. True when this call removed it. There is no
   * release without a token: it cannot tell whether another delivery stored under the claim.
   */
  async releaseIfHeld(partnerId: string, webhookId: string, scope: string, token: string): Promise<boolean> {
    const key = this.keys.partnerWebhookId(partnerId, webhookId);
    return (await this.redis.eval(RELEASE_HELD_LUA, 2, key, this.keys.partnerWebhookIdHeld(partnerId, webhookId), scope, token)) === 1;
  }

  /**
   * Claims `webhookId` for `scope` (with the delivery's `token`) in place of `holder`, another order's
   * scope (IngestService takes over no show's claim) whose event the caller has just found not stored: done only while no delivery under `holder`'s
   * claim is tracked (TAKE_OVER_LUA), i.e. the delivery that claimed it failed or died and none came
   * since within heldTtlSec. Returns the scope that holds the id afterwards (`scope` when taken).
   */
  async takeOver(partnerId: string, webhookId: string, holder: string, scope: string, token: string): Promise<string> {
    const key = this.keys.partnerWebhookId(partnerId, webhookId);
    return (await this.redis.eval(TAKE_OVER_LUA, 2, key, this.keys.partnerWebhookIdHeld(partnerId, webhookId), holder, scope, this.ttlSec, token, this.heldTtlSec)) as string;
  }

  /** The scope `webhookId` is claimed for, or null when it is not claimed. */
  async holder(partnerId: string, webhookId: string): Promise<string | null> {
    return this.redis.get(this.keys.partnerWebhookId(partnerId, webhookId));
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

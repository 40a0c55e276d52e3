/**
 * Partner refund ids are claimed partner-wide (the external contract §5: refunds are idempotent by id).
 * The ledger keeps an order's refunds in the order's own record (src/store/attribution.repository.ts),
 * so its idempotency was per order: the same refund id sent for two orders reversed commission on both.
 * An `order.refunded` now claims its refund id for its order before the event is stored; the same id
 * for another order is refused (422, nothing stored), for the same order it goes on (a re-delivery,
 * a retry, or the refund under a new webhook-id, which the ledger books once by its id).
 *
 * The claim is its own key (its own hash tag: one key, one slot, so it works on a Redis Cluster, where
 * the order's slot and the claim's cannot be in one script), written with one Lua step (GET, and SET
 * when nobody holds it) — this class, the Cluster path; on a single Redis the same rule runs inside
 * the order's one store call (INGEST_ORDER_ONE_LUA, src/store/show.repository.ts), where the claim and
 * the event are written together or not at all. Like a webhook-id claim it is a fence, not the record:
 * on a Cluster it is made before the order's write and kept when that write's answer is lost (a timeout
 * may hide a write that landed, and the partner's retry of the same refund passes its own claim), so a
 * refund id names one order for good; it is taken back only when the write definitely stored nothing
 * (Redis refused the store script, which reads every key before it writes) and no other delivery of the
 * order passed it. It never expires: the ledger keeps the refund for good too (≈ 100 bytes per refund id).
 */
import type { Keys } from './keys.js';
import type { RedisClient } from './redis.js';

/** The held-set member of a delivery that joined a claim no set tracked: never released (see webhook-id.repository.ts). */
const UNTRACKED = '*';

/**
 * KEYS: the claim, its held set. ARGV: the order id, a token ('' for none: no tracking), the held set's
 * ttl s. Returns the order id that holds the refund id (this one when it was free). The claim is
 * permanent from the start: a store whose answer was lost (a timeout), or a crash after it, may have
 * landed, and the refund is then kept for good. With a token the delivery is tracked in the held set
 * (it lives ttl s after its last join), so release() can take back a claim whose store definitely
 * wrote nothing; a delivery of the same order that passes the claim is tracked too, and one that finds
 * no set (its first delivery ended or died long ago, maybe stored) marks it untracked: never released.
 */
const CLAIM_REFUND_ID_LUA = `
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return holder end
if holder then
  if ARGV[2] ~= '' then
    if redis.call('EXISTS', KEYS[2]) == 0 then redis.call('SADD', KEYS[2], '${UNTRACKED}') end
    redis.call('SADD', KEYS[2], ARGV[2])
    redis.call('EXPIRE', KEYS[2], tonumber(ARGV[3]))
  end
  return holder
end
redis.call('SET', KEYS[1], ARGV[1])
if ARGV[2] ~= '' then
  redis.call('DEL', KEYS[2])
  redis.call('SADD', KEYS[2], ARGV[2])
  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[3]))
end
return ARGV[1]
`;

/**
 * KEYS: the claim, its held set. ARGV: the order id, the token. Drops the token; deletes the claim when
 * that left the set empty and the claim is still this order's: 1 when deleted.
 */
const RELEASE_REFUND_ID_LUA = `
if redis.call('SREM', KEYS[2], ARGV[2]) == 0 then return 0 end
if redis.call('SCARD', KEYS[2]) > 0 then return 0 end
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

export class RefundIdClaims {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    /** How long a claim's set of delivery tokens lives after its last join (CLAIM_PROVISIONAL_SEC). */
    private readonly heldTtlSec = 60,
  ) {}

  /**
   * Claims `refundId` for `orderId` unless another order holds it; returns the order id that holds it.
   * The claim is kept for good; with a `token` (the Cluster path) the delivery is tracked, and release()
   * may take the claim back when that delivery's store wrote nothing.
   */
  async claim(partnerId: string, refundId: string, orderId: string, token = ''): Promise<string> {
    return (await this.redis.eval(CLAIM_REFUND_ID_LUA, 2, this.keys.partnerRefundId(partnerId, refundId), this.keys.partnerRefundIdHeld(partnerId, refundId), orderId, token, this.heldTtlSec)) as string;
  }

  /** The order that holds `refundId`, or null while nobody does (a read: nothing claimed). */
  async holder(partnerId: string, refundId: string): Promise<string | null> {
    return this.redis.get(this.keys.partnerRefundId(partnerId, refundId));
  }

  /**
   * The order's write definitely stored nothing (the store script returned an error reply, or was never
   * sent): the claim goes unless another delivery of the order passed it (or one passed it untracked).
   */
  async release(partnerId: string, refundId: string, orderId: string, token: string): Promise<boolean> {
    return (await this.redis.eval(RELEASE_REFUND_ID_LUA, 2, this.keys.partnerRefundId(partnerId, refundId), this.keys.partnerRefundIdHeld(partnerId, refundId), orderId, token)) === 1;
  }
}

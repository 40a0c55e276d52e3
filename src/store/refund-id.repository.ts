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
 * on a Cluster it is made before the order's write and kept when that write fails (a timeout may hide a write that landed, and the
 * partner's retry of the same refund passes its own claim), so a refund id names one order for good.
 * It never expires: the ledger keeps the refund for good too (≈ 100 bytes per refund id).
 */
import type { Keys } from './keys.js';
import type { RedisClient } from './redis.js';

/** KEYS: the claim. ARGV: the order id. Returns the order id that holds the refund id (this one when it was free). */
const CLAIM_REFUND_ID_LUA = `
local holder = redis.call('GET', KEYS[1])
if holder then return holder end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
`;

export class RefundIdClaims {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
  ) {}

  /** Claims `refundId` for `orderId` unless another order holds it; returns the order id that holds it. */
  async claim(partnerId: string, refundId: string, orderId: string): Promise<string> {
    return (await this.redis.eval(CLAIM_REFUND_ID_LUA, 1, this.keys.partnerRefundId(partnerId, refundId), orderId)) as string;
  }
}

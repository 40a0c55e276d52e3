/**
 * One order model for every source (docs/attribution.md): partner `order.created` events and orders that a
 * target platform reports (its webhooks or its order report). Pure: no I/O.
 */
import { keyPart } from '../lib/ids.js';
import { applyBps, type Money } from './money.js';

export type OrderSource = 'partner' | 'platform_webhook' | 'platform_report';

export interface OrderLine {
  productId: string;
  quantity: number;
  amount: Money;
}

export interface NormalizedOrder {
  /**
   * The order's key in the ledger, unique per partner: the partner's order id, or
   * `@{keyPart(targetId)}:{platform order id}` for a platform-native order ('@' is outside the id alphabet,
   * so the two never collide).
   */
  ref: string;
  /** The id as its source knows it. */
  orderId: string;
  source: OrderSource;
  /** Platform orders: the target that reported it. */
  targetId: string | undefined;
  clickId: string | undefined;
  /** Partner orders may name a show; informational only (rule 1 attributes by click). */
  showId: string | undefined;
  /** Platform orders: the platform's broadcast / room / content id. */
  externalShowId: string | undefined;
  productId: string | undefined;
  createdAt: string;
  total: Money;
  lines: OrderLine[];
}

export function partnerOrderRef(orderId: string): string {
  return orderId;
}

/**
 * `@<keyPart(targetId)>:<platform order id>`: target ids may contain ':', so the target is written as
 * keyPart (target `t` + order `x:1` and target `t:x` + order `1` were both `@t:x:1`, one ledger record,
 * and `@t:` prefixed target `t:x`'s refs too). Unchanged for a target id without '%', ':', '{', '}'.
 */
export function platformOrderRef(targetId: string, platformOrderId: string): string {
  return `@${keyPart(targetId)}:${platformOrderId}`;
}

/**
 * The ref a platform order of a target whose id has ':' was stored under before keyPart (equal to
 * platformOrderRef for other targets). Only to find such an order again (AttributionService).
 */
export function legacyPlatformOrderRef(targetId: string, platformOrderId: string): string {
  return `@${targetId}:${platformOrderId}`;
}

/**
 * Where a platform order of a target whose id has none of '%', ':', '{', '}' is stored when its
 * platformOrderRef holds another target's order: another target's legacyPlatformOrderRef (target `t`'s
 * `@t:z:7` is target `t:z`'s order `7` stored before keyPart), which that target still reads and
 * updates. `@@` starts no other ref ('@' is outside the id alphabet and keyPart's output). Only
 * AttributionService.platformRef decides when it applies.
 */
export function displacedPlatformOrderRef(targetId: string, platformOrderId: string): string {
  return `@@${keyPart(targetId)}:${platformOrderId}`;
}

export type UnattributedReason = 'no_click' | 'unknown_click' | 'outside_window' | 'unknown_show';

export type Attribution =
  | {
      attributed: true;
      /** `click`: rule 1 (tracked-link click in the window); `platform_show`: rule 2 (the platform named the mirrored show). */
      via: 'click' | 'platform_show';
      showId: string;
      targetId: string;
      productId: string | undefined;
      clickId: string | undefined;
      /** The target's commission rate when the order was attributed (later rate changes do not rewrite it). */
      rateBps: number;
      note?: string;
    }
  | { attributed: false; reason: UnattributedReason; clickId: string | undefined };

export interface ClickRef {
  partnerId: string;
  showId: string;
  targetId: string;
  productId: string;
  at: string;
}

/**
 * The resolution of an ISO-8601 timestamp, in ms: 1000 for whole seconds (`…T10:00:00Z`), 100 for
 * tenths, 1 for milliseconds or finer (also for a string that is no such timestamp). Timezone
 * offsets are whole minutes, so a floor to this unit in UTC is the floor on the timestamp's own grid.
 */
export function timestampUnitMs(iso: string): number {
  const m = /T\d{2}:\d{2}:\d{2}(?:\.(\d+))?/.exec(iso);
  if (!m) return 1;
  const digits = m[1]?.length ?? 0;
  return digits >= 3 ? 1 : 10 ** (3 - digits);
}

/**
 * Rule 1: attributed to the click's (show, target, product) when 0 ≤ order.createdAt − click.at ≤
 * window (both edges inclusive), at the resolution the order's time is given in: an order stamped
 * `10:00:00Z` was made some time in that second, so a click at 10:00:00.400 is not after it (the
 * click's time is floored to that unit; the window's far edge is unchanged by it, the order's time
 * and the window being whole units). A click of another partner is treated as unknown.
 * Last click wins: an order carries exactly one clickId — the partner's checkout keeps the most recent
 * `sclid` it saw — so the latest click is the one that attributes.
 */
export function attributeByClick(
  partnerId: string,
  order: { createdAt: string; clickId: string | undefined },
  click: ClickRef | null,
  windowHours: number,
  rateFor: (targetId: string) => number,
): Attribution {
  if (!order.clickId) return { attributed: false, reason: 'no_click', clickId: undefined };
  if (!click || click.partnerId !== partnerId) return { attributed: false, reason: 'unknown_click', clickId: order.clickId };
  const unit = timestampUnitMs(order.createdAt);
  const delta = Date.parse(order.createdAt) - Math.floor(Date.parse(click.at) / unit) * unit;
  if (!(delta >= 0 && delta <= windowHours * 3_600_000)) return { attributed: false, reason: 'outside_window', clickId: order.clickId };
  return { attributed: true, via: 'click', showId: click.showId, targetId: click.targetId, productId: click.productId, clickId: order.clickId, rateBps: rateFor(click.targetId) };
}

/**
 * The order's net commission after `refunded` has been refunded: round-half-up(max(total − refunded, 0) × rate).
 * The ledger keeps accrued − reversed equal to this after every step: a refund's reversal is
 * netCommission(before) − netCommission(after), computed from the cumulative refunded amount (see
 * docs/attribution.md "Rounding").
 */
export function netCommission(total: number, refunded: number, rateBps: number): number {
  return applyBps(Math.max(total - refunded, 0), rateBps);
}

export type CommissionStatus = 'unattributed' | 'pending' | 'approved' | 'reversed';

export interface OrderTotals {
  attributed: boolean;
  createdAtMs: number;
  gross: number;
  refunded: number;
  accrued: number;
  reversed: number;
}

/** pending → approved once the hold period after the order has passed → reversed when nothing is left. */
export function commissionStatus(o: OrderTotals, nowMs: number, holdMs: number): CommissionStatus {
  if (!o.attributed) return 'unattributed';
  if ((o.gross > 0 && o.refunded >= o.gross) || (o.reversed > 0 && o.accrued - o.reversed === 0)) return 'reversed';
  return nowMs >= o.createdAtMs + holdMs ? 'approved' : 'pending';
}

export interface LedgerEntry {
  seq: number;
  /** Idempotency key: `accrual:{ref}` or `reversal:{refundId}` (`reversal:pf:{cumulative}` for platform-reported refunds). */
  key: string;
  kind: 'accrual' | 'reversal';
  /** Commission amount in minor units (positive; a reversal subtracts). */
  amount: number;
  currency: string;
  /** What the amount was computed from: the order total (accrual) or the refund amount (reversal). */
  base: number;
  refundId?: string;
  /** Whether the order's commission was still pending or already approved when this entry was recorded. */
  against: 'pending' | 'approved';
  /** When the order / refund happened. */
  occurredAt: string;
  /** When the ledger recorded it. */
  recordedAt: string;
}

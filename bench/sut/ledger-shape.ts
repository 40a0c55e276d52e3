/**
 * The deterministic orders of bench/ledger.bench.ts, shared by the bench (which fills the ledger) and
 * bench/sut/ledger-reconcile.ts (which generates the platform's report).
 */
import type { Attribution, NormalizedOrder } from '../../src/domain/order.js';
import type { PlatformOrder } from '../../src/targets/target.adapter.js';

const amountOf = (i: number): number => 1000 + (i % 50) * 100;

/** Platform order i of the reconciled target, created inside [fromMs, toMs). */
export function platformOrderOf(i: number, fromMs: number, toMs: number): PlatformOrder {
  const at = fromMs + ((i * 7919) % Math.max(1, toMs - fromMs - 1));
  return {
    orderId: `wn-${i}`,
    externalShowId: `ext-${i % 100}`,
    productId: `p${i % 20}`,
    clickId: undefined,
    createdAt: new Date(at).toISOString(),
    total: { amount: amountOf(i), currency: 'USD' },
    refunded: { amount: 0, currency: 'USD' },
    status: 'COMPLETED',
    commission: undefined,
  };
}

/** The ledger's record of platform order i (attributed to its show: rule 2), as attribution stores it. */
export function ledgerPlatformOrder(targetId: string, p: PlatformOrder, grossDelta = 0): { order: NormalizedOrder; attribution: Attribution } {
  const i = Number(p.orderId.slice(3));
  return {
    order: {
      ref: `@${targetId}:${p.orderId}`,
      orderId: p.orderId,
      source: 'platform_report',
      targetId,
      clickId: undefined,
      showId: undefined,
      externalShowId: p.externalShowId,
      productId: p.productId,
      createdAt: p.createdAt,
      total: { amount: p.total.amount + grossDelta, currency: p.total.currency },
      lines: [],
    },
    attribution: { attributed: true, via: 'platform_show', showId: `show-${i % 100}`, targetId, productId: p.productId, clickId: undefined, rateBps: 1000 },
  };
}

/**
 * Partner order i as the attribution worker stores it: 40 % attributed by a click (100 shows, 2
 * targets, 20 products), 20 % with a click id that did not attribute, 40 % without; created over 30
 * days before `nowMs`; ids and click ids as long as the service's own (sortable ids, 26 characters).
 */
export function partnerOrderOf(i: number, nowMs: number): { order: NormalizedOrder; attribution: Attribution; refund: number | null } {
  const r = (i * 2_654_435_761) % 100;
  const id = `ord_${(0x1000000000 + i * 7919).toString(36).padStart(22, '0')}`;
  const clickId = r < 60 ? `clk_${(0x2000000000 + i * 104_729).toString(36).padStart(22, '0')}` : undefined;
  const productId = `p${i % 20}`;
  const amount = amountOf(i);
  const createdAt = new Date(nowMs - ((i * 15_485_863) % (30 * 86_400_000))).toISOString();
  const order: NormalizedOrder = {
    ref: id,
    orderId: id,
    source: 'partner',
    targetId: undefined,
    clickId,
    showId: undefined,
    externalShowId: undefined,
    productId,
    createdAt,
    total: { amount, currency: 'USD' },
    lines: [{ productId, quantity: 1, amount: { amount, currency: 'USD' } }],
  };
  const attribution: Attribution =
    r < 40
      ? { attributed: true, via: 'click', showId: `show-${i % 100}`, targetId: i % 2 === 0 ? 'yt1' : 'tt1', productId, clickId, rateBps: 1000 }
      : { attributed: false, reason: clickId ? 'outside_window' : 'no_click', clickId };
  return { order, attribution, refund: i % 10 === 3 ? Math.round(amount * 0.3) : null };
}

/**
 * What the ledger stores of a platform's order (its webhook, or its order report): the one check,
 * shared by attribution (which skips an order that fails it) and reconciliation (which must not
 * report such an order as healed into the ledger: it is not).
 */
import { PLATFORM_ORDER_ID_MAX_LENGTH } from '../lib/ids.js';
import { rfc3339Ms } from '../lib/timestamp.js';
import { isCurrency, type Money } from '../domain/money.js';
import { DAY_MS } from '../store/attribution.repository.js';
import type { PlatformOrder } from '../targets/target.adapter.js';

function isMoney(m: unknown): m is Money {
  const v = m as Money | undefined;
  return !!v && Number.isSafeInteger(v.amount) && typeof v.currency === 'string' && /^[A-Z]{3}$/.test(v.currency);
}

/** Longest id kept from a platform order (order ids over it are refused; hints over it are dropped): the order view takes as many. */
export const PLATFORM_ID_MAX = PLATFORM_ORDER_ID_MAX_LENGTH;

/** How far ahead a platform order's createdAt may be: the bound partner events have (ingest.service.ts). */
const PLATFORM_CREATED_AT_FUTURE_MAX_MS = 366 * DAY_MS;

export const PLATFORM_ORDER_PROBLEMS = {
  orderId: `an order id of 1 to ${PLATFORM_ID_MAX} characters`,
  createdAt: 'an order time from 1970-01-01T00:00:00Z to a year from now',
  total: `a total of 0 to ${Number.MAX_SAFE_INTEGER} minor units in an active ISO 4217 currency`,
  refunded: `a refunded amount of 0 to ${Number.MAX_SAFE_INTEGER} minor units`,
} as const;

/** The first field of `p` the ledger would refuse, or undefined when it stores it. */
export function checkPlatformOrder(p: PlatformOrder, nowMs: number): keyof typeof PLATFORM_ORDER_PROBLEMS | undefined {
  if (typeof p.orderId !== 'string' || p.orderId.length === 0 || p.orderId.length > PLATFORM_ID_MAX) return 'orderId';
  // The same bounds as a partner's order (ingest.service.ts): an unset time serialised as a zero value
  // (`0001-01-01T00:00:00Z`) was stored as an order of year 1, outside every attribution window, and the
  // platform's corrected report then a repeat of it (first write wins by ref): its commission lost.
  const createdMs = rfc3339Ms(p.createdAt) ?? NaN;
  if (!Number.isFinite(createdMs) || createdMs > nowMs + PLATFORM_CREATED_AT_FUTURE_MAX_MS) return 'createdAt';
  // A currency not on ISO's list is refused as at the edge (currencyIssues): never a ledger currency of its own.
  if (!isMoney(p.total) || p.total.amount < 0 || !isCurrency(p.total.currency)) return 'total';
  if (!isMoney(p.refunded) || p.refunded.amount < 0) return 'refunded';
  return undefined;
}

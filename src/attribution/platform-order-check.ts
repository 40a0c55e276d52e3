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

/**
 * What no platform's order id holds: control characters (\p{Cc}: a NUL, an ESC, a line end), format
 * characters (\p{Cf}: the explicit bidi controls U+202A-U+202E and U+2066-U+2069 that operatorText
 * refuses and platform-text.ts removes, the marks U+200E, U+200F, U+061C, the zero-width U+200B-U+200D,
 * U+2060-U+2064, U+FEFF, a soft hyphen: invisible, so an id that looks like another is not it) and lone
 * UTF-16 surrogates (well-formed.ts). \p{Cf} holds every bidi control operatorText's BIDI_CONTROL names,
 * so this check has no list of its own; operatorText keeps the implicit marks (an operator's
 * right-to-left name may need them), an order id needs none. White space is kept: a
 * Bambuser order id is whatever the merchant's site reports through conversion tracking (an id such
 * as "SO 1001" is possible), and refusing it would lose the order and its refunds for good
 * (reconciliation could not heal it either). A Whatnot webhook with an order id "ord\u0000\u202E1" was stored
 * (200) as sent: shown reversed in the order view and the reports, and found by
 * GET …/orders/{orderId} only through a percent-encoded NUL (attack on npm start, 2026-12-07). Format
 * characters were still taken after that fix (the attack's review): "ord-1\u200B" is another order than
 * "ord-1" that every view shows alike. \p{Cf} also holds visible signs (the Arabic number signs
 * U+0600-U+0605 and U+06DD, the joiner U+200D of emoji sequences): refused in an id new to the ledger
 * too. An id the ledger already holds is taken with its control and format characters (checkPlatformOrder's
`held`), never with a lone surrogate (LONE_SURROGATE).
 */
const UNSAFE_ID = /[\p{Cc}\p{Surrogate}\p{Cf}]/u;

/**
 * A lone UTF-16 surrogate (a pair is one code point under `u`): refused in every order id, held or not.
 * Such an id cannot be stored as it is: the ledger's key is sent to Redis as UTF-8, where every lone
 * surrogate becomes U+FFFD, so 'wn-ls-\ud800' and 'wn-ls-\udc00' are one ledger record. Taken as held,
 * a signed webhook for 'wn-ls-\udc00' had its refund applied to the stored 'wn-ls-\ud800' (re-review).
 */
const LONE_SURROGATE = /\p{Surrogate}/u;

/** An outside id the ledger keeps as it is (and a hint it takes): 1 to PLATFORM_ID_MAX characters, none of UNSAFE_ID. */
export function isPlatformIdText(v: unknown): v is string {
  return isIdLength(v) && !UNSAFE_ID.test(v);
}

/** 1 to PLATFORM_ID_MAX characters, whatever they are. */
function isIdLength(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0 && v.length <= PLATFORM_ID_MAX;
}

/** An id the ledger already holds is taken as it is: 1 to PLATFORM_ID_MAX characters, no lone surrogate (one the ledger cannot hold faithfully). */
function isHeldIdText(v: unknown): v is string {
  return isIdLength(v) && !LONE_SURROGATE.test(v);
}

export const PLATFORM_ORDER_PROBLEMS = {
  orderId: `an order id of 1 to ${PLATFORM_ID_MAX} characters, without control characters, format characters (Unicode Cf: bidi controls, zero-width and other invisible characters) or lone surrogates`,
  createdAt: 'an order time from 1970-01-01T00:00:00Z to a year from now',
  total: `a total of 0 to ${Number.MAX_SAFE_INTEGER} minor units in an active ISO 4217 currency`,
  refunded: `a refunded amount of 0 to ${Number.MAX_SAFE_INTEGER} minor units`,
} as const;

/**
 * The first field of `p` the ledger would refuse, or undefined when it stores it. `held`: the ledger
 * already holds this target's order of exactly this id (stored before UNSAFE_ID refused what it
 * holds): its id is taken with control and format characters, within the length, so its refunds are
 * still applied (the platform's webhook, reconciliation's heal). Refused, such an order lost every
 * refund and was an invalid_order of every reconciliation run. Only ids new to the ledger are refused
 * for those; a lone surrogate is refused in every id (LONE_SURROGATE: no ledger record is exactly it).
 */
export function checkPlatformOrder(p: PlatformOrder, nowMs: number, held = false): keyof typeof PLATFORM_ORDER_PROBLEMS | undefined {
  // An order its platform's report named in a form the adapter could not read: its amounts are placeholders.
  if (p.unreadable !== undefined) return 'total';
  if (!(held ? isHeldIdText(p.orderId) : isPlatformIdText(p.orderId))) return 'orderId';
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

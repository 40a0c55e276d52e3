/**
 * The one contract every target platform implements (youtube, tiktok, whatnot, bambuser, facebook).
 *
 * The mirror worker only ever talks to a platform through this interface and decides what to do from
 * `capabilities`, never from `platform === '...'`. Adapters are plain axios clients of the platform's
 * public API with a configurable base URL; they parse every response with zod and throw the typed
 * errors of `target.errors.ts`. They hold no state between calls: anything that must survive a crash
 * (cached access tokens, rate-limit windows, intents) goes through the context's Redis-backed helpers.
 */
import type { Logger } from 'pino';
import type { Money } from '../domain/money.js';
import type { DestinationGuard } from '../lib/destination-guard.js';

export const PLATFORMS = ['youtube', 'tiktok', 'whatnot', 'bambuser', 'facebook'] as const;
export type Platform = (typeof PLATFORMS)[number];

export interface Capabilities {
  /** `api`: createShow() creates the remote show; `operator_link`: an operator creates it by hand and links it. */
  createShow: 'api' | 'operator_link';
  /** What a product pin becomes on this platform (`product_pin`: the platform's own product pin, e.g. Facebook Live Shopping). */
  pin: 'chat_message' | 'comment' | 'highlight' | 'show_product' | 'affiliate_link' | 'product_pin';
  /** The platform can take a pin back (unpin() does something remote). */
  unpin: boolean;
  /** startShow()/endShow() drive the remote show by API (false: the creator goes live in the platform app). */
  lifecycle: boolean;
  /** The remote show exposes an ingest (RTMP/RTMPS url + key) that the partner's encoder pushes to. */
  ingest: boolean;
  /** The platform sends order webhooks to POST /v1/platform-webhooks/{targetId}. */
  orderWebhooks: boolean;
  /** The platform has an order / commission report API for reconciliation. */
  orderReport: boolean;
}

/**
 * Whether a pin names its product to the platform by PinSpec.platformProductId (the partner's sku, else
 * its product id), so that the same product sent under another id is another product there: Whatnot's
 * lineup, TikTok Shop's promotion link, Facebook Live Shopping's catalog item. A pinned product whose sku
 * changes is then taken back and pinned again under the new id. A chat message or a comment carries the
 * tracked link, whose code does not depend on the sku; a Bambuser highlight features the show product
 * found by that link (its `productReference` is written once, when it is attached).
 */
export function pinNamesProduct(caps: Capabilities): boolean {
  return caps.pin === 'show_product' || caps.pin === 'affiliate_link' || caps.pin === 'product_pin';
}

/** What this target can do: its account's answer where the adapter resolves one, else the platform's. */
export async function capabilitiesOf(adapter: TargetAdapter): Promise<Capabilities> {
  return adapter.resolveCapabilities ? adapter.resolveCapabilities() : adapter.capabilities;
}

/** A target as the worker hands it to an adapter (credentials already decrypted). */
export interface TargetRef {
  id: string;
  partnerId: string;
  platform: Platform;
  /** Overrides the platform API host (simulators); undefined = the real platform. */
  baseUrl: string | undefined;
  credentials: Record<string, string>;
  /**
   * Only for a PATCH's credentials being checked (target.verify.ts): the names of the fields the stored
   * target's credentials hold, which advice texts name too (credentials-advice.ts adviceTarget).
   */
  heldFields?: readonly string[];
}

export interface AccessToken {
  accessToken: string;
  /** epoch ms */
  expiresAt: number;
  refreshToken?: string;
  /**
   * Set only on a record that holds no token yet (`accessToken` '', `expiresAt` 0): new credentials
   * saved without one (a target PATCH or create with `?verify=false`, or a check that obtained none).
   * It names that save, so a refresh of the grant before it, still under way, is not stored over it
   * (RedisTokenStore.refreshed: only a refresh that started from this record is). It is not a cached
   * token: a token given with the credentials is still used (accessTokens).
   */
  grant?: string;
  /**
   * Set only on a record a target PATCH wrote for a new grant before its target write (RedisTokenStore.newGrant):
   * `base`, the committed record it replaced (sealed, '' none), what is put back when that target write
   * does not happen; `commits` and `identity`, what the target record is once it did (GrantFence.writes:
   * the hash of its sealed text, and grantIdentity of its plaintext, absent on a record of the version
   * before and when no key opened the credentials); `by`, the PATCH's nonce.
   */
  pending?: { base: string; commits: string; by: string; identity?: string };
}

/** Cached OAuth tokens, shared by every worker process (Redis, encrypted at rest). */
export interface TokenStore {
  get(): Promise<AccessToken | null>;
  set(token: AccessToken): Promise<void>;
  clear(): Promise<void>;
  /**
   * The platform refused the refresh token `refreshToken` for good (undefined: the record had none, the
   * credentials' one was used): the record goes, only if it still holds that refresh token. False when
   * another process stored another one meanwhile (it rotated the token: that one is live, and kept).
   */
  dropGrant(refreshToken: string | undefined): Promise<boolean>;
  /** The platform refused `accessToken`: if it is still the stored one, it is marked expired (a refresh token beside it stays). */
  expire(accessToken: string): Promise<void>;
  /**
   * Stores `next`, what a refresh with the refresh token `used` obtained (`from`: what get() gave when
   * that refresh started), unless the record's grant changed meanwhile: new credentials were saved (a
   * target PATCH replaced the record) or another process rotated the refresh token. Returns the token
   * to use: `next` when stored, else the record's current one (`next`, unstored, when there is none or
   * it holds no token: it names new credentials saved without one, AccessToken.grant).
   */
  refreshed(next: AccessToken, used: string, from: AccessToken | null): Promise<AccessToken>;
  /**
   * A refresh starts and may take `ms` (its request's timeout) until its result is stored: a dropGrant
   * of another process waits for it meanwhile. Returns the end of it (called once the result is stored,
   * or the refresh failed).
   */
  refreshing(ms: number): Promise<() => Promise<void>>;
}

/** Per target-account rate limiter shared by every worker (Redis). */
export interface RateLimiter {
  /**
   * Take one request slot (or `cost` units) or throw RateLimitedError with the wait. `useCase` (data:
   * a platform's name for a kind of call, e.g. Facebook's Business Use Case type `pages`): the call
   * also waits for a block of that use case alone (blockUntil with the same `useCase`); with several,
   * for the longest block of any of them.
   */
  acquire(cost?: number, useCase?: string | readonly string[]): Promise<void>;
  /**
   * Remember that the platform told us to stay away until `untilMs` (429 Retry-After, quota reset):
   * from every call, or with `useCase` only from the calls of that use case.
   */
  blockUntil(untilMs: number, reason: string, useCase?: string): Promise<void>;
  /**
   * The target's request limit (its `rateLimit`, else the platform's): `requests` per `windowMs`;
   * undefined when it has none (YouTube, Facebook: only blocks). An adapter bounds by it how long a
   * recorded read may be used (YouTube's updateShow: at one request per window the write goes out one
   * window after its read), and records a read only where the limit needs it (YouTube's link of a
   * broadcast made in Studio: at one request per window).
   */
  readonly windowLimit?: { requests: number; windowMs: number } | undefined;
}

/**
 * Exactly-once helper for non-idempotent remote calls. `once(step, run, recover)`:
 * - if `step` already completed for this intent, returns the stored result without calling anything;
 * - if a previous attempt started `step` but never recorded a result (crash, timeout), calls
 *   `recover(attempt)` first: it should look the object up on the platform (by the marker the adapter
 *   put in it) and return it, or null when it was never created; only then is `run()` called again.
 *   A lookup that pages a newest-first list must page back to `attempt.since`, not stop after a fixed
 *   number of pages: on a busy account the object can be hundreds of entries down by then;
 * - otherwise records the start, calls `run()`, records and returns the result.
 * Results must be JSON-serialisable.
 */
export type Once = <T>(step: string, run: () => Promise<T>, recover?: (attempt: RecoverAttempt) => Promise<T | null>, opts?: OnceOptions) => Promise<T>;

/** What `recover()` is told about the attempts whose outcome is unknown. */
export interface RecoverAttempt {
  /**
   * When the earliest of them started (ISO 8601, the clock of the process that ran it), when known:
   * an object one of them made is not older than this, give or take the clock skew between that
   * process and the platform.
   */
  since?: string;
}

export interface OnceOptions {
  /**
   * `run()` makes exactly one platform request. When that request is refused before anything was
   * done (a RateLimitedError: 429, quota, our own limiter; or an AuthExpiredError: 401), or never
   * sent (a TargetError of any class with `unsent`: the token refresh before it failed), the step is
   * forgotten instead of left "started", so the next attempt sends the request again without a
   * recovery lookup first. Without it, a platform that allows one request per window refuses every
   * attempt (lookup, then insert) and provisioning never ends. Never set it on a `run()` that makes
   * a write followed by another call: a refused second call does not undo the first.
   */
  singleRequest?: boolean;
  /**
   * `run()` may be sent again harmlessly (an idempotent request: YouTube's transition to testing, which
   * answers "redundant" once done): any error forgets the step as if it had never started (a 5xx, a
   * timeout, a RetryableError such as YouTube's errorStreamInactive, as well as a refusal), so the next
   * attempt sends it again at once, with no wait and no lookup. Without it an error other than a refusal
   * left the step started, and the next attempt waited out that attempt's deadline and the settle window
   * (2 × PLATFORM_TIMEOUT_MS + PLATFORM_SETTLE_MS, about 50 s by default) before it sent anything. A
   * crash (or a lost lease) in the middle of `run()` still leaves it started: the next attempt waits
   * that long then.
   */
  repeatable?: boolean;
  /**
   * The step's result carries no secret (a chat message's id): the intent store keeps it in clear
   * instead of sealing it with SECRETS_KEY (an AES-GCM seal per pin). Results that can carry
   * credentials (stream names, stream URLs) must never set it.
   */
  resultInClear?: boolean;
  /**
   * `run()` begins with a request through the target's limiter (`limiter.acquire`): the step's start
   * may take that request's token in its own Lua step (IntentRepository.scoped, on a single Redis),
   * and the attempt's first acquire() then uses it. Never set it on a step whose `run()` may send
   * nothing through the limiter: its token would be taken for nothing.
   */
  limitedRequest?: boolean;
  /**
   * The step's completion is not progress: the caller's onDone (ScopedOptions.onDone, SyncService's
   * retries reset) is not called. For a step made again only because its earlier result is too old to
   * use (YouTube's recorded read made again): counted as progress, it reset the mirror's retries on
   * every run, and a write after it that failed with a 5xx every time never failed the mirror.
   */
  notProgress?: boolean;
}

/** Deployment settings of the platform APIs (src/config), the same for every target. */
export interface PlatformSettings {
  /** Graph API version the Facebook adapter calls, e.g. `v27.0` (FACEBOOK_GRAPH_VERSION). */
  facebookGraphVersion: string;
}

export interface AdapterContext {
  target: TargetRef;
  settings: PlatformSettings;
  /**
   * The connect-time SSRF guard for every connection the adapter makes (src/lib/destination-guard.ts,
   * installed by src/targets/platform-http.ts). The mirror worker always passes one; adapter tests
   * that talk to a loopback simulator may leave it out.
   */
  destinations?: DestinationGuard;
  tokens: TokenStore;
  limiter: RateLimiter;
  log: Logger;
  /**
   * The target's secrets (credentials, recent tokens) out of a text: what a platform error's message
   * goes through before the adapter logs it itself (an error it throws is redacted by openAdapter,
   * src/targets/instrumented.ts, which sets this). Left out (adapter tests), texts are kept as they are.
   */
  redact?: (text: string) => string;
  /** Request timeout for platform calls, ms. */
  timeoutMs: number;
}

/**
 * A step's recorded result, looked at only: the result when `step` is done, else undefined (never
 * started, or started by an attempt that never recorded a result). Writes nothing (no start record, no
 * replica WAIT), takes no limiter token and calls nothing on the platform.
 */
export type Recorded = <T>(step: string) => Promise<T | undefined>;

/** Per-call context: the intent scope of the operation being performed. */
export interface OpContext {
  once: Once;
  /**
   * A look at one of the scope's steps without running it (Recorded): YouTube's recorded read looks at
   * the read made under the name before (recordedRead). Left out (adapter tests' contexts), no step
   * counts as recorded.
   */
  recorded?: Recorded;
  /** A short unique string for this intent (put it in a description/metadata to find the object again). */
  marker: string;
  /**
   * Only look for what earlier attempts made, never make anything: each `once` returns a step's
   * recorded result, or what its recover() finds of an attempt that never recorded one, and throws
   * NotMadeError otherwise (a step never started, or not found) without calling `run()`. The mirror
   * uses it for a create whose outcome is unknown when the show was called off meanwhile; an adapter
   * skips its waits before the first step (Facebook's schedule window) then.
   */
  findOnly?: boolean;
  /**
   * attachShow only: the nonce of the operator's link being read (the mirror's `data.link`, new with
   * each `PUT …/mirrors/{t}`). A step tied to that one link (YouTube's recorded read of the linked
   * broadcast) is named by it: a re-link of the same broadcast keeps the generation and so the
   * attach scope, and must not find the link before's read.
   */
  link?: string;
}

export interface ShowSpec {
  title: string;
  description: string | undefined;
  scheduledAt: string;
  /**
   * createShow only: the partner's show is live now, so the platform show is made to go live at once
   * whatever `scheduledAt` says (a snapshot's start may be days ahead, or a placeholder, while it is on
   * air). Not part of what a mirror records as applied.
   */
  live?: boolean;
}

/** What a withdraw (cancelShow) left to do. */
export interface WithdrawOutcome {
  /** A clean-up after the show was taken down failed for now (5xx, quota…): a later run of the mirror asks cancelShow again. */
  cleanupPending: boolean;
  /**
   * The clean-up was refused even with a fresh access token (401 after the refresh: AuthExpiredError's
   * case): the sync marks the target's access token expired, as for any other call. Pending as well.
   */
  authExpired?: boolean;
}

/**
 * What the mirror knows about the remote show; `data` is adapter-private (stream id, chat id, ...),
 * but for the keys the sync reads: `attach` '1' (linked by an operator: attachShow reads it on the next
 * run; with `link`, that link's nonce, OpContext.link), `incomplete` '1' (a look-up-only create stopped short of what a create does: the sync runs the
 * create in full before the show is used, unless it is withdrawn) and `cleanup` (the intent scope of a
 * withdraw whose clean-up is left for later: WithdrawOutcome).
 */
export interface RemoteShow {
  externalId: string;
  url: string | undefined;
  ingest: { url: string; streamKey: string } | undefined;
  data: Record<string, string>;
}

/** A pin (or, for unpin(), the pin to take back: title and price are placeholders when the show no longer lists the product). */
export interface PinSpec {
  productId: string;
  title: string;
  price: Money;
  /** The tracked link `{PUBLIC_BASE_URL}/l/{code}`. */
  linkUrl: string;
  /** Product id on the platform when the partner's catalogue maps to one (TikTok/Whatnot), else ours. */
  platformProductId: string;
}

export interface PinResult {
  /** Platform id of the pin object (message id, comment id, highlight id, promotion link), if any. */
  ref: string | undefined;
}

/** An order as a platform reports it (webhook or report API), normalised. Money in minor units. */
export interface PlatformOrder {
  /** The platform's order id (unique per target). */
  orderId: string;
  /** The platform's show / broadcast / room / content id the order came from, when it says. */
  externalShowId: string | undefined;
  /** Product id as the platform knows it (our product id or sku when we created the listing). */
  productId: string | undefined;
  /** Our click id when the platform carried it through (sclid). */
  clickId: string | undefined;
  createdAt: string;
  total: Money;
  /** Total refunded so far (amount 0 when none). */
  refunded: Money;
  /** Platform status string, for reconciliation (e.g. COMPLETED, CANCELLED, SETTLED). */
  status: string | undefined;
  /** Commission the platform says it pays, if it reports one. */
  commission: Money | undefined;
  /**
   * Set (to what is wrong, e.g. "sku lines in USD and in EUR") when the platform's report names the
   * order in a form that cannot be read: its amounts are then no figures of the platform's. One such
   * order fails neither the report nor the other orders: reconciliation reports it (an invalid_order
   * discrepancy) and never heals it, and the ledger stores no such order (checkPlatformOrder).
   */
  unreadable?: string | undefined;
  /**
   * Set (to what is wrong, e.g. `order "X" twice, with different data`) on a later copy of an order the
   * report handed on already, in other data (an id named on two pages, or under two Bambuser shows:
   * report-order.ts OncePerReport): no order of the report (not counted, compared or healed; the first
   * copy was), only a note that reconciliation reports as one invalid_order discrepancy, of a fixed kind
   * and text on every run. At most one per order id and report, after that id's order.
   */
  repeat?: string | undefined;
  /**
   * With `repeat`: what the first copy (the one handed on) said of where the order belongs: its show and
   * its date ('' when it could not be read). A note is the first copy's: reported in its period
   * (reconcile.stream.ts), by its target on a shared account (account-orders.ts), never by its own.
   */
  repeatOf?: { externalShowId: string | undefined; createdAt: string } | undefined;
}

/** What a credential check learned of the account (verifyCredentials): the platform's id of it (accountId()). */
export interface AccountIdentity {
  accountId?: string | undefined;
}

export interface TargetAdapter {
  readonly platform: Platform;
  /** What every target on this platform can do. */
  readonly capabilities: Capabilities;
  /**
   * What this target can do, when that depends on its account (e.g. the permissions granted to its
   * token): the adapter finds out (and caches the answer); without this method, `capabilities` holds.
   * The worker asks this, never the platform's name.
   */
  resolveCapabilities?(): Promise<Capabilities>;
  /**
   * Checks the target's credentials with the platform's cheapest authenticated call (made when a
   * target is saved, src/targets/target.verify.ts). Resolves when the platform accepts them; throws
   * the typed errors: PermanentError / AuthExpiredError when it refuses them (with its reason),
   * RetryableError / RateLimitedError when it cannot answer now.
   */
  verifyCredentials?(): Promise<void | AccountIdentity>;
  /**
   * The platform's own id of the account the credentials act for (Whatnot: the seller; TikTok: the
   * shop), as the platform answers it: one platform call. Two credentials of one account (a seller
   * connected twice, two apps of one shop) answer the same id (src/reconcile/account-orders.ts).
   * Without this method the credentials alone name the account (target.registry.ts reportAccountId).
   */
  accountId?(): Promise<string>;
  /** capabilities.createShow === 'api': create the remote show (and stream/ingest) for this show. */
  createShow(spec: ShowSpec, op: OpContext): Promise<RemoteShow>;
  /**
   * Operator linked `externalId` by hand: check that it exists and read what the mirror reports. With
   * `op` (the sync adopting the show to run it), the adapter may also make what the platform show lacks
   * to go live, each through `op.once` (YouTube: a stream bound to a broadcast made without one).
   * Without it (readiness checks, a link to a show that is already over) it only reads.
   */
  attachShow(externalId: string, op?: OpContext): Promise<RemoteShow>;
  updateShow(remote: RemoteShow, spec: ShowSpec, op: OpContext): Promise<void>;
  /** Drive the remote show to live. Idempotent: already live is success. May throw RetryableError
   *  (e.g. stream not active yet). */
  startShow(remote: RemoteShow, op: OpContext): Promise<void>;
  /** Drive the remote show to ended. Idempotent. */
  endShow(remote: RemoteShow, op: OpContext): Promise<void>;
  /**
   * The show was cancelled (or ended without ever going live): withdraw the remote show the way the
   * platform allows for its state — delete one not yet on air, end one on air (a platform may refuse
   * to delete it), leave one already over. Idempotent: a retry after a crash finds it over or gone.
   * A best-effort clean-up after the show is down (YouTube: the stream made for it) that failed in a
   * way that may pass is said in the outcome (`cleanupPending`): the withdraw stands, and a later run
   * of the mirror calls cancelShow again with the same scope, whose recorded steps are not repeated.
   */
  cancelShow(remote: RemoteShow, op: OpContext): Promise<void | WithdrawOutcome>;
  pin(remote: RemoteShow, pin: PinSpec, op: OpContext): Promise<PinResult>;
  /** capabilities.unpin: undo the pin remotely; otherwise a no-op. */
  unpin(remote: RemoteShow, pin: PinSpec, ref: string | undefined, op: OpContext): Promise<void>;
  /**
   * capabilities.orderWebhooks: verify a webhook the platform sent to POST /v1/platform-webhooks/{targetId}
   * (its own scheme, on the raw body) and return the orders in it (empty for non-order topics).
   * Throws WebhookAuthError when the signature / auth header does not verify.
   */
  handleWebhook?(headers: Record<string, string | undefined>, raw: Buffer): Promise<PlatformOrder[]>;
  /**
   * capabilities.orderReport: every order the platform reports with createdAt in [from, to), all pages.
   * `signal` (reconciliation's worker closing) ends a wait for the account's rate limit (report-wait.ts)
   * with the signal's reason.
   */
  listOrders?(from: Date, to: Date, signal?: AbortSignal): Promise<PlatformOrder[]>;
  /**
   * capabilities.orderReport: the same report as listOrders (each order once; an order's `repeat` note is no order), handed over page by
   * page as the platform returns them, so that reconciliation holds a few pages rather than the whole
   * period's orders. A failed page throws from the iteration.
   */
  orderPages?(from: Date, to: Date, signal?: AbortSignal): AsyncIterable<PlatformOrder[]>;
  /**
   * What the order report leaves out and one more call per order reads (Whatnot: the product, from
   * `GET /orders/{id}/items`): `orders` (from this adapter's report) with it filled in, in the same
   * order. Reconciliation calls it only for the orders it is about to add to the ledger — an order the
   * ledger holds needs nothing more, so a re-run reads no order's details twice. It waits for the
   * account's rate limit as a report page does (`signal` ends the wait); a failure throws the typed
   * errors, and nothing of these orders is stored (the next run adds them).
   */
  orderDetails?(orders: PlatformOrder[], signal?: AbortSignal): Promise<PlatformOrder[]>;
}

export type AdapterFactory = (ctx: AdapterContext) => TargetAdapter;

/** The whole report in one array (for callers that want it whole). */
export async function collectPages<T>(pages: AsyncIterable<T[]>): Promise<T[]> {
  const all: T[] = [];
  for await (const page of pages) for (const item of page) all.push(item);
  return all;
}

/** An adapter's order report from its paged form: orderPages as given, listOrders collecting it. */
export function pagedOrderReport(orderPages: (from: Date, to: Date, signal?: AbortSignal) => AsyncIterable<PlatformOrder[]>): Required<Pick<TargetAdapter, 'listOrders' | 'orderPages'>> {
  return { orderPages, listOrders: (from, to, signal) => collectPages(orderPages(from, to, signal)) };
}

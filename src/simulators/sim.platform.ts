/**
 * Shared state and request machinery of every platform simulator (README "Platforms").
 *
 * A platform simulator = one `SimPlatform` (this file: effects, request log, faults, limits, quota,
 * access tokens, orders, webhook destination, timers) + one Fastify plugin that speaks the platform's
 * real protocol and calls `installSimApiHooks()` so that recording, latency, the request window and
 * fault injection behave the same on every platform. Only the platform decides what its errors look
 * like (callbacks in `SimApiProtocol`). Production code never imports this.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import type { Money } from '../domain/money.js';
import type { Platform } from '../targets/target.adapter.js';
import { idRecord } from '../lib/id-record.js';

// ---------------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------------

export const SIM_EFFECT_TYPES = [
  'show.created',
  'show.updated',
  'show.started',
  'show.ended',
  'show.cancelled',
  'product.pinned',
  'product.unpinned',
  'message.posted',
  // the simulator's RTMP sink (rtmp-sink.ts): an encoder started / stopped publishing on a stream key
  'stream.started',
  'stream.stopped',
] as const;
export type SimEffectType = (typeof SIM_EFFECT_TYPES)[number];

/** A side effect the platform accepted (what a viewer / the platform app would now see). */
export interface SimEffect {
  seq: number;
  type: SimEffectType;
  /** The platform's id of the show (the one the mirror reports). */
  externalId: string;
  title?: string;
  productId?: string;
  /** First URL in a posted message or comment. */
  url?: string;
  at: string;
}
export type SimEffectInput = Omit<SimEffect, 'seq' | 'at'>;

/** One platform API request as received. `path` is relative to the platform mount (no `/{platform}`). */
export interface SimRequestRecord {
  seq: number;
  method: string;
  path: string;
  query: Record<string, string | string[]>;
  headers: Record<string, string | string[] | undefined>;
  /** Raw body text exactly as received ('' when there was none). */
  body: string;
  /** Status the simulator answered (or, for a `timeout` fault, would have answered); 0 = not answered yet. */
  status: number;
  /** The fault injected into this request, if any. */
  fault?: ApiFaultKind;
  /** When the request arrived (its headers were read). */
  at: string;
  /** When the simulator answered it (its handler had run; for a `timeout` fault, when the answer was withheld). */
  answeredAt?: string;
  /** The client had already closed the connection when the simulator answered (it gave up waiting). */
  clientGone?: boolean;
}

/** Faults of API requests; the RTMP sink's own (`rtmp_drop`, `rtmp_refuse`) are applied by rtmp-sink.ts. */
export const API_FAULT_KINDS = ['429', '500', 'timeout', 'token_expired'] as const;
export type ApiFaultKind = (typeof API_FAULT_KINDS)[number];
export const FAULT_KINDS = [...API_FAULT_KINDS, 'rtmp_drop', 'rtmp_refuse'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface SimFaults {
  /** Probability 0..1 that an API request fails. */
  rate: number;
  kinds: FaultKind[];
  /** `timeout`: how long the response is withheld before the socket is destroyed. */
  hangMs: number;
  seed?: number;
  /** `429`: the Retry-After the fault answers with, where the platform sends one (Whatnot, Bambuser); the platform's own default otherwise. */
  retryAfter?: string;
}

/** Limits every platform has; platforms add their own numeric knobs through `X` (e.g. streamActivationMs). */
export interface SimLimits {
  /** Quota units per day (null = unlimited); the day boundary is `quotaTimeZone` midnight. */
  quotaPerDay: number | null;
  /** Requests per moving window (null = unlimited). */
  requestsPerWindow: number | null;
  windowMs: number;
  /** Added to every API request before it is handled. */
  latencyMs: number;
  /** Lifetime of issued access tokens. */
  tokenTtlSec: number;
}
export type ExtraLimits = Record<string, number>;

export interface SimRefund {
  refundId: string;
  amount: Money;
  createdAt: string;
}
export interface SimOrder {
  orderId: string;
  externalId: string;
  productId: string;
  total: Money;
  /** Units sold (1 unless the order said): TikTok reports a sku's unit price and quantity. */
  quantity: number;
  clickId?: string;
  createdAt: string;
  status: 'paid' | 'partially_refunded' | 'refunded';
  refunds: SimRefund[];
}
export interface SimOrderInput {
  externalId: string;
  productId: string;
  total: Money;
  quantity?: number | undefined;
  clickId?: string | undefined;
  createdAt?: string | undefined;
}

export interface SimWebhookDestination {
  url: string;
  secret?: string;
}
export interface SimWebhookDelivery {
  seq: number;
  url: string;
  body: string;
  /** HTTP status of the receiver, or undefined when the POST failed (see `error`). */
  status?: number;
  error?: string;
  at: string;
}

/** A complete HTTP answer chosen by a platform (error bodies, 429s). */
export interface SimReply {
  status: number;
  headers?: Record<string, string>;
  body: unknown;
}

/** State of the moving request window, for 429 bodies and RateLimit-* headers. */
export interface SimWindowState {
  limit: number;
  remaining: number;
  windowMs: number;
  /** ms until the oldest request in the window leaves it (a slot frees up). */
  resetMs: number;
}

/** Thrown by control-plane helpers; sim.server turns it into application/problem+json. */
export class SimProblem extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    detail?: string,
  ) {
    super(detail ?? title);
  }
}

/** One fault of a control body or query: its field's dotted path ('' for the whole body) and what is wrong with it. */
export interface InvalidField {
  path: string;
  message: string;
}

/** What `invalidControlBody` reads of a failed parse (a ZodError's `issues`). */
interface ParseIssues {
  issues: readonly { code: string; path: readonly PropertyKey[]; message: string; keys?: readonly string[] }[];
}

/**
 * A control body (or query) of `/_sim/...` that does not parse: a 400 application/problem+json of one
 * shape on every control route, the server's own (orders, limits, faults…) and each simulator's
 * (accounts, revocations, products…): `title` "Invalid request body", `detail` the offending fields by
 * name (unknown ones apart: the bodies are strict) and the shape the route expects, and `errors`, one
 * `{path, message}` per fault (contract: problem+json, `errors` for validation; the service's own API
 * names an unknown field the same way). Two shapes once: the server's named no field in `detail`
 * (only in `errors`), the simulators' had no `errors`.
 */
export class InvalidControlBody extends SimProblem {
  constructor(
    detail: string,
    readonly errors: readonly InvalidField[],
    title: string,
  ) {
    super(400, title, detail);
  }
}

/**
 * The 400 of a control body (`/_sim/...`) that does not parse (InvalidControlBody): `expected`, the
 * shape, and `error`, the parse's issues. The control bodies are strict, as a strict platform is:
 * `POST /_sim/youtube/accounts {"highlights": false}` (a Bambuser switch) was a 201 with the field
 * ignored, so a test that meant a YouTube account without something got one with everything.
 */
export function invalidControlBody(expected: string, error: ParseIssues, part: 'body' | 'query' = 'body'): InvalidControlBody {
  const at = (path: readonly PropertyKey[]): string => path.map(String).join('.');
  const unknown = error.issues.flatMap((i) => (i.code === 'unrecognized_keys' ? (i.keys ?? []).map((k) => at([...i.path, k])) : []));
  const invalid = error.issues.filter((i) => i.code !== 'unrecognized_keys').map((i) => ({ path: at(i.path), message: i.message }));
  const named = (path: string): string => (path === '' ? `the ${part} itself` : JSON.stringify(path));
  const faults: string[] = [];
  if (unknown.length > 0) faults.push(`unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map(named).join(', ')}`);
  if (invalid.length > 0) faults.push(`invalid: ${invalid.map((f) => `${named(f.path)} (${f.message})`).join(', ')}`);
  const errors = [...unknown.map((path) => ({ path, message: 'unknown field (this route does not take it)' })), ...invalid];
  return new InvalidControlBody([...faults, expected].join('; '), errors, part === 'body' ? 'Invalid request body' : 'Invalid query');
}

/** `value` (a control body; none is `{}`) as `schema` parses it, else its 400 (invalidControlBody). */
export function parseControlBody<T>(schema: z.ZodType<T>, value: unknown, expected: string, part: 'body' | 'query' = 'body'): T {
  const r = schema.safeParse(value ?? {});
  if (!r.success) throw invalidControlBody(expected, r.error, part);
  return r.data;
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

/** First http(s) URL in a text, without trailing sentence punctuation. */
export function firstUrl(text: string): string | undefined {
  const m = /https?:\/\/[^\s<>"'`]+/i.exec(text);
  return m ? m[0].replace(/[.,;:!?)\]}]+$/, '') : undefined;
}

/** Random url-safe id (platform ids are opaque strings). */
export function randomId(bytes = 12): string {
  return randomBytes(bytes).toString('base64url');
}

/** mulberry32: tiny deterministic PRNG so a fault test can be replayed with a seed. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Calendar day (YYYY-MM-DD) in a time zone: quota days end at the platform's local midnight. */
const dayFormats = new Map<string, Intl.DateTimeFormat>();
export function dayKey(now: number, timeZone: string): string {
  // Building a DateTimeFormat costs far more than using one: keep one per zone.
  let f = dayFormats.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' });
    dayFormats.set(timeZone, f);
  }
  return f.format(now);
}

const DEFAULT_LIMITS: SimLimits = {
  quotaPerDay: null,
  requestsPerWindow: null,
  windowMs: 1000,
  latencyMs: 0,
  tokenTtlSec: 3599,
};
const DEFAULT_FAULTS: SimFaults = { rate: 0, kinds: [], hangMs: 10_000 };
/** Cap on the request log so benchmarks do not grow memory without bound (seq keeps counting). */
const MAX_REQUEST_LOG = 10_000;

// ---------------------------------------------------------------------------------------------
// Access tokens (OAuth-ish platforms: youtube, tiktok, facebook...)
// ---------------------------------------------------------------------------------------------

export type TokenCheck = 'valid' | 'expired' | 'unknown';

export class SimTokens {
  private readonly tokens = new Map<string, number>();

  /** Issue a new access token valid for `ttlSec`; `prefix` mimics the platform's token format. */
  issue(ttlSec: number, prefix = ''): { token: string; expiresAt: number } {
    const token = `${prefix}${randomId(32)}`;
    const expiresAt = Date.now() + ttlSec * 1000;
    this.tokens.set(token, expiresAt);
    return { token, expiresAt };
  }

  check(token: string | undefined): TokenCheck {
    if (!token) return 'unknown';
    const exp = this.tokens.get(token);
    if (exp === undefined) return 'unknown';
    return Date.now() < exp ? 'valid' : 'expired';
  }

  /** This token stops working now; false when it was never issued. */
  expire(token: string): boolean {
    if (!this.tokens.has(token)) return false;
    this.tokens.set(token, Date.now() - 1);
    return true;
  }

  /** Every outstanding token stops working now (the `token_expired` fault). */
  expireAll(): void {
    const now = Date.now();
    for (const t of this.tokens.keys()) this.tokens.set(t, now - 1);
  }

  clear(): void {
    this.tokens.clear();
  }
}

// ---------------------------------------------------------------------------------------------
// Per-platform state
// ---------------------------------------------------------------------------------------------

/** The longest wait a Node timer keeps (2^31 − 1 ms, about 24.8 days): a longer one runs after 1 ms. */
export const MAX_TIMER = 2_147_483_647;

export interface SimPlatformOptions<X extends ExtraLimits> {
  /** Defaults for the common limits (the real platform's limits). */
  limits?: Partial<SimLimits>;
  /** Platform-specific numeric limits, settable through PUT /_sim/{platform}/limits. */
  extraLimits?: X;
  /**
   * The platform counts requests per caller (Bambuser per API key, Whatnot per seller and app), not per
   * platform: the shared hook takes no slot, the platform's auth hook takes one by caller
   * (`takeWindowSlot(now, key)`).
   */
  windowPerCaller?: boolean;
  /** IANA zone whose midnight resets the daily quota (YouTube: America/Los_Angeles). */
  quotaTimeZone?: string;
  /** Tests only: the longest single timer `schedule` arms (default MAX_TIMER). */
  maxTimerMs?: number;
}

export class SimPlatform<X extends ExtraLimits = ExtraLimits> {
  readonly tokens = new SimTokens();
  effects: SimEffect[] = [];
  requests: SimRequestRecord[] = [];
  orders = new Map<string, SimOrder>();
  /**
   * Orders the platform's order report lists a second time, in the data given (copyOrder): a report
   * that names an id twice, which no platform promises not to send (PlatformSimulator.listsOrderCopies).
   */
  orderCopies: SimOrder[] = [];
  webhook: SimWebhookDestination | undefined;
  webhookDeliveries: SimWebhookDelivery[] = [];
  faults: SimFaults = { ...DEFAULT_FAULTS };
  limits: SimLimits & X;

  private readonly defaultLimits: SimLimits & X;
  private readonly quotaTimeZone: string;
  private effectSeq = 0;
  private requestSeq = 0;
  private orderSeq = 0;
  private refundSeq = 0;
  private deliverySeq = 0;
  private quota = { day: '', used: 0 };
  /** Moving request windows by caller ('' for a platform-wide one). */
  private readonly windows = new Map<string, number[]>();
  private readonly windowPerCaller: boolean;
  private random: () => number = Math.random;
  private readonly timers = new Set<NodeJS.Timeout>();
  /** The longest single timer `schedule` arms (MAX_TIMER; SimPlatformOptions.maxTimerMs in tests). */
  private readonly maxTimerMs: number;
  private readonly holds = new Set<AbortController>();
  private readonly resetHandlers: Array<() => void> = [];

  constructor(
    readonly name: Platform,
    opts: SimPlatformOptions<X> = {},
  ) {
    this.defaultLimits = { ...DEFAULT_LIMITS, ...opts.limits, ...(opts.extraLimits ?? ({} as X)) };
    this.limits = { ...this.defaultLimits };
    this.quotaTimeZone = opts.quotaTimeZone ?? 'UTC';
    this.windowPerCaller = opts.windowPerCaller ?? false;
    this.maxTimerMs = opts.maxTimerMs ?? MAX_TIMER;
  }

  /** Names of the platform-specific limit keys (for validating PUT /limits). */
  extraLimitKeys(): string[] {
    return Object.keys(this.defaultLimits).filter((k) => !(k in DEFAULT_LIMITS));
  }

  /** Register platform-private state to clear on reset (broadcasts, streams, chats...). */
  onReset(fn: () => void): void {
    this.resetHandlers.push(fn);
  }

  /** Back to a freshly started simulator: state, logs, faults and limits. */
  reset(): void {
    this.cancelTimers();
    this.releaseHolds();
    this.tokens.clear();
    this.effects = [];
    this.requests = [];
    this.orders.clear();
    this.orderCopies = [];
    this.webhook = undefined;
    this.webhookDeliveries = [];
    this.faults = { ...DEFAULT_FAULTS };
    this.limits = { ...this.defaultLimits };
    this.effectSeq = this.requestSeq = this.orderSeq = this.refundSeq = this.deliverySeq = 0;
    this.quota = { day: '', used: 0 };
    this.windows.clear();
    this.random = Math.random;
    for (const fn of this.resetHandlers) fn();
  }

  /** Server shutdown: nothing may keep the process or a socket alive. */
  dispose(): void {
    this.cancelTimers();
    this.releaseHolds();
  }

  // --- effects & request log --------------------------------------------------------------

  recordEffect(input: SimEffectInput): SimEffect {
    const effect: SimEffect = { seq: ++this.effectSeq, ...input, at: new Date().toISOString() };
    this.effects.push(effect);
    return effect;
  }

  recordRequest(entry: Omit<SimRequestRecord, 'seq' | 'at' | 'status'>): SimRequestRecord {
    const rec: SimRequestRecord = { seq: ++this.requestSeq, ...entry, status: 0, at: new Date().toISOString() };
    this.requests.push(rec);
    if (this.requests.length > MAX_REQUEST_LOG) this.requests.splice(0, this.requests.length - MAX_REQUEST_LOG);
    return rec;
  }

  // --- limits, quota, request window ------------------------------------------------------

  setLimits(patch: Partial<SimLimits & X>): SimLimits & X {
    this.limits = { ...this.limits, ...patch };
    return this.limits;
  }

  /** Take `units` of today's quota; false (nothing taken) when that would exceed quotaPerDay. */
  tryConsumeQuota(units: number, now = Date.now()): boolean {
    const day = dayKey(now, this.quotaTimeZone);
    if (day !== this.quota.day) this.quota = { day, used: 0 };
    const max = this.limits.quotaPerDay;
    if (max !== null && this.quota.used + units > max) return false;
    this.quota.used += units;
    return true;
  }

  quotaUsage(now = Date.now()): { day: string; used: number; limit: number | null; timeZone: string } {
    const day = dayKey(now, this.quotaTimeZone);
    return { day, used: day === this.quota.day ? this.quota.used : 0, limit: this.limits.quotaPerDay, timeZone: this.quotaTimeZone };
  }

  /** Moving-window limiter: takes a slot and returns undefined, or returns the full window's state. */
  /** `key`: the caller, for a platform that counts per caller (windowPerCaller); without it such a platform takes none. */
  takeWindowSlot(now = Date.now(), key?: string): SimWindowState | undefined {
    const limit = this.limits.requestsPerWindow;
    if (limit === null || (key === undefined && this.windowPerCaller)) return undefined;
    const { windowMs } = this.limits;
    const live = (this.windows.get(key ?? '') ?? []).filter((t) => t > now - windowMs);
    this.windows.set(key ?? '', live);
    if (live.length < limit) {
      live.push(now);
      return undefined;
    }
    return this.windowState(now, key);
  }

  /** Current window state (platforms that send RateLimit-* headers on every response use this), of `key`'s window. */
  windowState(now = Date.now(), key = ''): SimWindowState {
    const limit = this.limits.requestsPerWindow ?? Number.MAX_SAFE_INTEGER;
    const { windowMs } = this.limits;
    const live = (this.windows.get(key) ?? []).filter((t) => t > now - windowMs);
    const oldest = live[0];
    return {
      limit,
      remaining: Math.max(0, limit - live.length),
      windowMs,
      resetMs: oldest === undefined ? 0 : Math.max(0, oldest + windowMs - now),
    };
  }

  // --- faults -----------------------------------------------------------------------------

  setFaults(f: { rate: number; kinds: FaultKind[]; hangMs?: number | undefined; seed?: number | undefined; retryAfter?: string | undefined }): SimFaults {
    this.faults = {
      rate: f.rate,
      kinds: [...f.kinds],
      hangMs: f.hangMs ?? DEFAULT_FAULTS.hangMs,
      ...(f.seed !== undefined ? { seed: f.seed } : {}),
      ...(f.retryAfter !== undefined ? { retryAfter: f.retryAfter } : {}),
    };
    this.random = f.seed !== undefined ? seededRandom(f.seed) : Math.random;
    return this.faults;
  }

  /** Roll the dice for one request: a kind chosen uniformly among those applicable to it, or none. */
  rollFault<K extends FaultKind>(applicable: readonly K[]): K | undefined {
    const { rate } = this.faults;
    const kinds = this.faults.kinds.filter((k): k is K => (applicable as readonly FaultKind[]).includes(k));
    if (rate <= 0 || kinds.length === 0) return undefined;
    if (this.random() >= rate) return undefined;
    return kinds[Math.floor(this.random() * kinds.length)] ?? kinds[0];
  }

  /** Wait `ms`, cut short by the client closing the socket, reset or shutdown. */
  async hold(ms: number, socket: IncomingMessage['socket']): Promise<void> {
    const ac = new AbortController();
    this.holds.add(ac);
    const onClose = (): void => ac.abort();
    socket.once('close', onClose);
    try {
      await sleep(ms, undefined, { signal: ac.signal });
    } catch {
      // aborted: the client gave up or the simulator is shutting down; either way stop holding
    } finally {
      socket.off('close', onClose);
      this.holds.delete(ac);
    }
  }

  private releaseHolds(): void {
    for (const ac of this.holds) ac.abort();
    this.holds.clear();
  }

  // --- timers (stream activation, delayed state changes) ----------------------------------

  /**
   * Run `fn` after `ms` (synchronously when ms <= 0); cancelled by reset and shutdown. A wait past
   * MAX_TIMER is waited out MAX_TIMER at a time: Node runs a longer setTimeout after 1 ms, so Facebook's
   * `maxLiveSec` of 30 days (2.6e9 ms) stopped a broadcast at once.
   */
  schedule(ms: number, fn: () => void): void {
    if (ms <= 0) {
      fn();
      return;
    }
    const step = Math.min(ms, this.maxTimerMs);
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (ms > step) this.schedule(ms - step, fn);
      else fn();
    }, step);
    t.unref(); // a pending simulated state change must never keep a process alive
    this.timers.add(t);
  }

  private cancelTimers(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  // --- orders -----------------------------------------------------------------------------

  createOrder(input: SimOrderInput): SimOrder {
    const order: SimOrder = {
      orderId: `${this.name}-ord-${++this.orderSeq}`,
      externalId: input.externalId,
      productId: input.productId,
      total: { ...input.total },
      quantity: input.quantity ?? 1,
      ...(input.clickId !== undefined ? { clickId: input.clickId } : {}),
      createdAt: input.createdAt ?? new Date().toISOString(),
      status: 'paid',
      refunds: [],
    };
    this.orders.set(order.orderId, order);
    return order;
  }

  /**
   * The order `orderId` listed once more by the order report, as it is now with `changes` (another
   * show, total or time): a copy, which the order's later refunds do not change. A SimProblem 404 for
   * an order that does not exist; as refundOrder, a total in another currency than the order's refunds
   * (422) or below what they refunded already (409): no platform lists an order refunded past its total.
   */
  copyOrder(orderId: string, changes: Partial<Pick<SimOrder, 'externalId' | 'total' | 'createdAt'>>): SimOrder {
    const order = this.orders.get(orderId);
    if (!order) throw new SimProblem(404, 'Order not found', `no order ${orderId} on ${this.name}`);
    if (changes.total && order.refunds.length > 0) {
      const refunded = order.refunds.reduce((s, r) => s + r.amount.amount, 0);
      if (changes.total.currency !== order.total.currency) throw new SimProblem(422, 'Currency mismatch', `order's refunds are in ${order.total.currency}, its copy in ${changes.total.currency}`);
      if (refunded > changes.total.amount) throw new SimProblem(409, 'Refund exceeds order total', `already refunded ${refunded} of ${changes.total.amount}`);
    }
    const copy: SimOrder = { ...order, ...changes, total: { ...(changes.total ?? order.total) }, refunds: [...order.refunds] };
    this.orderCopies.push(copy);
    return copy;
  }

  /** What the order report lists: every order, then the copies (copyOrder) in the order they were made. */
  reportedOrders(): SimOrder[] {
    return [...this.orders.values(), ...this.orderCopies];
  }

  refundOrder(orderId: string, amount: Money): { order: SimOrder; refund: SimRefund } {
    const order = this.orders.get(orderId);
    if (!order) throw new SimProblem(404, 'Order not found', `no order ${orderId} on ${this.name}`);
    if (amount.currency !== order.total.currency) {
      throw new SimProblem(422, 'Currency mismatch', `order is in ${order.total.currency}, refund in ${amount.currency}`);
    }
    if (amount.amount <= 0) throw new SimProblem(422, 'Invalid refund', 'refund amount must be positive');
    const refunded = order.refunds.reduce((s, r) => s + r.amount.amount, 0);
    if (refunded + amount.amount > order.total.amount) {
      throw new SimProblem(409, 'Refund exceeds order total', `already refunded ${refunded} of ${order.total.amount}`);
    }
    const refund: SimRefund = { refundId: `${this.name}-rfd-${++this.refundSeq}`, amount: { ...amount }, createdAt: new Date().toISOString() };
    order.refunds.push(refund);
    order.status = refunded + amount.amount === order.total.amount ? 'refunded' : 'partially_refunded';
    return { order, refund };
  }

  // --- webhooks ---------------------------------------------------------------------------

  /**
   * POST `body` to the webhook destination with the platform's (signature) headers. Never throws:
   * a receiver that is down is what real platforms live with too; the delivery is logged either way.
   */
  async sendWebhook(body: string, headers: Record<string, string>): Promise<SimWebhookDelivery | undefined> {
    const dest = this.webhook;
    if (!dest) return undefined;
    const delivery: SimWebhookDelivery = { seq: ++this.deliverySeq, url: dest.url, body, at: new Date().toISOString() };
    try {
      const res = await fetch(dest.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body,
        signal: AbortSignal.timeout(5000),
      });
      delivery.status = res.status;
      await res.body?.cancel();
    } catch (err) {
      delivery.error = err instanceof Error ? err.message : String(err);
    }
    this.webhookDeliveries.push(delivery);
    return delivery;
  }
}

// ---------------------------------------------------------------------------------------------
// Request machinery every platform plugin installs
// ---------------------------------------------------------------------------------------------

export interface SimApiProtocol {
  /**
   * OAuth token endpoints are exempt from the request window and from the `429` and `token_expired`
   * faults (a token endpoint cannot answer "your token expired"); `500` and `timeout` still apply.
   */
  isAuthEndpoint?(req: FastifyRequest): boolean;
  /** The platform's answer to an injected `429` / `500` / `token_expired` fault on this request. */
  faultReply(kind: Exclude<ApiFaultKind, 'timeout'>, req: FastifyRequest): SimReply;
  /** The platform's 429 when `limits.requestsPerWindow` is exhausted. */
  rateLimitReply(window: SimWindowState, req: FastifyRequest): SimReply;
  /**
   * The request window this request counts in, for a platform that counts kinds of calls apart
   * (Facebook's Business Use Cases); without it one window ('' or the caller's) counts them all.
   */
  windowKey?(req: FastifyRequest): string;
}

/** Per-request bookkeeping, keyed by the raw Node request (survives Fastify's request wrapper). */
interface RequestSim {
  record: SimRequestRecord;
  hangMs?: number;
}
const perRequest = new WeakMap<IncomingMessage, RequestSim>();

function queryObject(url: string): Record<string, string | string[]> {
  const out = idRecord<string | string[]>(); // parameter names come from the client
  const qs = url.includes('?') ? url.slice(url.indexOf('?') + 1) : '';
  for (const [k, v] of new URLSearchParams(qs)) {
    const prev = out[k];
    out[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  return out;
}

/** Parse what the body claims to be, keeping the raw text for the request log. */
function parseBody(contentType: string | undefined, text: string): unknown {
  if (text.length === 0) return undefined;
  const ct = (contentType ?? '').toLowerCase();
  if (ct.includes('application/x-www-form-urlencoded')) return Object.fromEntries(new URLSearchParams(text));
  if (ct.includes('json')) return JSON.parse(text) as unknown;
  return text;
}

function sendReply(reply: FastifyReply, r: SimReply): FastifyReply {
  reply.code(r.status);
  if (r.headers) reply.headers(r.headers);
  return reply.send(r.body);
}

/**
 * Install, inside a platform plugin (call it first thing in the plugin, so it wraps every route,
 * including the plugin's not-found handler), the behaviour every simulated API shares:
 *  1. body parsers that keep the raw text (JSON, form-urlencoded, anything else as text);
 *  2. onRequest: the request goes into the request log;
 *  3. preHandler: latency, then the moving request window (protocol.rateLimitReply), then faults:
 *     `429`/`500`/`token_expired` answer with protocol.faultReply (token_expired also invalidates
 *     every access token); `timeout` lets the request be processed normally and withholds the
 *     response for `hangMs`, then destroys the socket (the client cannot know whether it worked);
 *  4. onSend: the status goes into the request log; a `timeout` response is held and dropped (the
 *     reply is hijacked first, so an answer a later hook gave — a 401 — still stops the handler).
 * Logged paths are relative to the plugin's mount (`app.prefix`, e.g. `/youtube`).
 */
export function installSimApiHooks(app: FastifyInstance, sim: SimPlatform, protocol: SimApiProtocol): void {
  const prefix = app.prefix;
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (req, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    const state = perRequest.get(req.raw);
    if (state) state.record.body = text;
    try {
      done(null, parseBody(req.headers['content-type'], text));
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      (e as Error & { statusCode?: number; code?: string }).statusCode = 400;
      (e as Error & { code?: string }).code = 'SIM_BODY_PARSE_ERROR';
      done(e, undefined);
    }
  });

  app.addHook('onRequest', async (req) => {
    const url = req.raw.url ?? req.url;
    const pathOnly = url.split('?')[0] ?? url;
    const record = sim.recordRequest({
      method: req.method,
      path: pathOnly.startsWith(prefix) ? pathOnly.slice(prefix.length) || '/' : pathOnly,
      query: queryObject(url),
      headers: { ...req.headers },
      body: '',
    });
    perRequest.set(req.raw, { record });
  });

  app.addHook('preHandler', async (req, reply) => {
    const state = perRequest.get(req.raw);
    const { latencyMs } = sim.limits;
    if (latencyMs > 0) await sleep(latencyMs);
    const isAuth = protocol.isAuthEndpoint?.(req) ?? false;

    if (!isAuth) {
      const full = sim.takeWindowSlot(undefined, protocol.windowKey?.(req));
      if (full) return sendReply(reply, protocol.rateLimitReply(full, req));
    }

    const fault = sim.rollFault(isAuth ? ['500', 'timeout'] : API_FAULT_KINDS);
    if (!fault) return undefined;
    if (state) state.record.fault = fault;
    if (fault === 'timeout') {
      if (state) state.hangMs = sim.faults.hangMs;
      return undefined; // processed normally; onSend withholds the answer
    }
    if (fault === 'token_expired') sim.tokens.expireAll();
    return sendReply(reply, protocol.faultReply(fault, req));
  });

  app.addHook('onSend', async (req, reply, payload) => {
    const state = perRequest.get(req.raw);
    if (!state) return payload;
    state.record.status = reply.statusCode;
    state.record.answeredAt = new Date().toISOString();
    if (req.raw.socket?.destroyed !== false) state.record.clientGone = true;
    if (state.hangMs !== undefined) {
      // Taken over before the hold: Fastify counts a reply as sent only once it is written, so a
      // hook's answer (e.g. the 401 of an expired token) still held here would let the hook chain go
      // on and run the route handler — the refused request would then take effect after all.
      reply.hijack();
      await sim.hold(state.hangMs, req.raw.socket);
      // never answer: the client sees a timeout / reset after the work was done
      req.raw.socket.destroy();
    }
    return payload;
  });
}

// ---------------------------------------------------------------------------------------------
// What sim.server needs from each platform simulator
// ---------------------------------------------------------------------------------------------

export interface PlatformSimulator {
  readonly platform: Platform;
  // `any`-free widening: every SimPlatform<X> is usable through the common surface
  readonly sim: SimPlatform<ExtraLimits>;
  /** Registered by sim.server under prefix `/{platform}`. */
  readonly plugin: FastifyPluginAsync;
  /**
   * The platform's own control routes (account state its API cannot set: a token's granted
   * permissions, an order's status...), registered by sim.server under prefix `/_sim/{platform}`.
   */
  readonly control?: FastifyPluginAsync;
  /**
   * POST /_sim/{platform}/shows: create a show the way an operator would in the platform's app, on
   * `account` (the channel / shop / seller / organisation / Page id; the first seeded account by
   * default, except on TikTok and Whatnot, where a show made without one is the first account's to
   * use it; an unknown one is a SimProblem 404).
   */
  createShowByHand?(title: string, account?: string): string;
  /** POST /_sim/{platform}/orders refuses (404) an externalId for which this returns false. */
  showExists?(externalId: string): boolean;
  /** POST /_sim/{platform}/orders: a SimProblem for what the platform could not have sold. */
  checkOrder?(input: SimOrderInput): void;
  /**
   * POST /_sim/{platform}/orders/{orderId}/copies lists an order a second time in the order report
   * (SimPlatform.copyOrder): only where the simulated report reads SimPlatform.reportedOrders(), and
   * under a show of the same account only (this says whether `copyShow` is of `orderShow`'s account).
   */
  listsOrderCopies?(orderShow: string, copyShow: string): boolean;
  /** After an order was stored: the platform's own notification (webhook), if it has one. */
  onOrderCreated?(order: SimOrder): Promise<void>;
  /** After a refund was stored: likewise. */
  onOrderRefunded?(order: SimOrder, refund: SimRefund): Promise<void>;
}
export type PlatformSimulatorFactory = () => PlatformSimulator;

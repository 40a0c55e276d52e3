/**
 * The platform simulators' HTTP server (README "Platforms"): one Fastify app, each platform's fake API as
 * a plugin under `/{platform}`, and the inspection/control plane under `/_sim`.
 *
 * Adding a platform: write `<platform>.sim.ts` exporting a `PlatformSimulatorFactory` (see
 * sim.platform.ts and youtube.sim.ts) and add it to `PLATFORM_SIMULATORS` below.
 */
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { z } from 'zod';
import { CheckedMoneySchema as MoneySchema } from '../domain/money.js';
import { acceptEmptyJsonBody } from '../lib/empty-json-body.js';
import { PLATFORMS, type Platform } from '../targets/target.adapter.js';
import { FAULT_KINDS, InvalidControlBody, MAX_TIMER, SimProblem, parseControlBody as parse, type PlatformSimulator, type PlatformSimulatorFactory } from './sim.platform.js';
import { createYoutubeSimulator } from './youtube.sim.js';
import { createTiktokSimulator } from './tiktok.sim.js';
import { createWhatnotSimulator } from './whatnot.sim.js';
import { createBambuserSimulator } from './bambuser.sim.js';
import { createFacebookSimulator } from './facebook.sim.js';
import { RtmpSink, streamsOf } from './rtmp-sink.js';

/** Every simulated platform; one factory per platform (a fresh state per server). */
export const PLATFORM_SIMULATORS: readonly PlatformSimulatorFactory[] = [createYoutubeSimulator, createTiktokSimulator, createWhatnotSimulator, createBambuserSimulator, createFacebookSimulator];

// ---------------------------------------------------------------------------------------------
// Control bodies
// ---------------------------------------------------------------------------------------------

const OrderBody = z.strictObject({
  externalId: z.string().min(1),
  productId: z.string().min(1),
  // Platforms sell at 0 or more: a negative total is no order any of them reports (the adapters refuse it).
  total: MoneySchema.strict().extend({ amount: z.number().int().nonnegative() }),
  // Units of the product in the order (TikTok's affiliate report gives a sku's unit price and quantity).
  quantity: z.number().int().min(1).max(1000).optional(),
  clickId: z.string().min(1).optional(),
  createdAt: z.iso.datetime({ offset: true }).optional(),
});
const OrderCopyBody = z.strictObject({
  externalId: OrderBody.shape.externalId.optional(),
  total: OrderBody.shape.total.optional(),
  createdAt: OrderBody.shape.createdAt,
});
const RefundBody = z.strictObject({ amount: MoneySchema.strict().extend({ amount: z.number().int().positive() }) });
const ShowBody = z.strictObject({ title: z.string().min(1).max(500), account: z.string().min(1).max(200).optional() });
const WebhookBody = z.strictObject({ url: z.url({ protocol: /^https?$/ }), secret: z.string().min(1).optional() });
const FaultsBody = z.strictObject({
  rate: z.number().min(0).max(1),
  kinds: z.array(z.enum(FAULT_KINDS)),
  hangMs: z.number().int().min(0).max(600_000).optional(),
  seed: z.number().int().optional(),
  retryAfter: z.string().max(64).optional(),
});
const count = z.number().int().min(0);
/**
 * A wait the simulator sleeps through per request (latencyMs): Node runs a setTimeout past 2^31 − 1 ms
 * after 1 ms, so a larger value would answer at once instead of never. tokenTtlSec keeps the same bound
 * (TikTok's expiry is a unix time in seconds). A platform's own knobs are plain counts: the ones that are
 * waits run through SimPlatform.schedule, which waits out any length (MAX_TIMER at a time), and the
 * others are dates (Facebook's graphClockMs), tolerances or switches — a bound chosen by the knob's
 * name (`…Ms`) refused every graphClockMs date after 1970-01-25, and left Facebook's maxLiveSec (a
 * wait in seconds) unguarded.
 */
const timerCount = count.max(MAX_TIMER, `at most ${MAX_TIMER} (a timer's longest wait, about 24.8 days)`);
const BaseLimitsBody = z.object({
  quotaPerDay: count.nullable().optional(),
  requestsPerWindow: count.nullable().optional(),
  windowMs: z.number().int().min(1).optional(),
  latencyMs: timerCount.optional(),
  tokenTtlSec: timerCount.optional(),
});
const SinceQuery = z.object({ since: z.coerce.number().int().min(0).optional() });

// The shapes a 400 of each names (invalidControlBody), next to the offending fields.
const ORDER_SHAPE = 'expected {externalId, productId, total: {amount: integer >= 0, currency}, quantity?: 1..1000, clickId?, createdAt?: ISO-8601 date-time with offset}';
const ORDER_COPY_SHAPE = 'expected {externalId?, total?: {amount: integer >= 0, currency}, createdAt?: ISO-8601 date-time with offset}';
const REFUND_SHAPE = 'expected {amount: {amount: integer > 0, currency}}';
const SHOW_SHAPE = 'expected {title: 1-500 characters, account?}';
const WEBHOOK_SHAPE = 'expected {url: http(s) URL, secret?}';
const FAULTS_SHAPE = `expected {rate: 0..1, kinds: [${FAULT_KINDS.join(', ')}], hangMs?: 0..600000, seed?: integer, retryAfter?}`;
const SINCE_SHAPE = 'expected ?since=<integer >= 0>';
const limitsShape = (extra: readonly string[]): string =>
  `expected {${['quotaPerDay', 'requestsPerWindow', 'windowMs', 'latencyMs', 'tokenTtlSec', ...extra].map((k) => `${k}?`).join(', ')}}: counts (latencyMs and tokenTtlSec at most ${MAX_TIMER})`;

// ---------------------------------------------------------------------------------------------
// problem+json
// ---------------------------------------------------------------------------------------------

function problem(reply: FastifyReply, status: number, title: string, detail?: string, errors?: unknown[]): FastifyReply {
  return reply
    .code(status)
    .type('application/problem+json')
    .send({ type: 'about:blank', title, status, ...(detail ? { detail } : {}), ...(errors ? { errors } : {}) });
}

// ---------------------------------------------------------------------------------------------
// App
// ---------------------------------------------------------------------------------------------

export interface SimulatorAppOptions {
  logger?: boolean;
  /** The platform simulators to serve (default: a fresh one from each of PLATFORM_SIMULATORS). */
  simulators?: readonly PlatformSimulator[];
}

export function buildSimulatorApp(opts: SimulatorAppOptions = {}): FastifyInstance {
  const simulators = opts.simulators ?? PLATFORM_SIMULATORS.map((f) => f());
  const byName = new Map<string, PlatformSimulator>(simulators.map((s) => [s.platform, s]));
  // The platforms take path segments far longer than Fastify's default limit for a parameter (100,
  // answered 414): a product id of 101-128 characters (a contract id, sent as TikTok's or Whatnot's
  // product id in the path when the product has no sku) was refused here, and the show's whole mirror
  // on both simulators failed, where the simulators' own checks take ids up to 128 (and platform order
  // ids up to 256, percent-encoded in the path).
  const app = Fastify({ logger: opts.logger ? { level: 'info' } : false, routerOptions: { maxParamLength: 2048 } });
  // An empty application/json body is no body: `POST /_sim/reset` from a client that labels every
  // request JSON was a 400. (The platform APIs parse their own bodies.)
  acceptEmptyJsonBody(app);

  for (const s of simulators) {
    void app.register(s.plugin, { prefix: `/${s.platform}` });
    if (s.control) void app.register(s.control, { prefix: `/_sim/${s.platform}` });
  }

  // a `timeout` fault holds a response for up to hangMs: let go of those before waiting for sockets
  app.addHook('preClose', async () => {
    for (const s of simulators) s.sim.dispose();
  });

  app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => {
    if (err instanceof InvalidControlBody) return problem(reply, 400, err.title, err.message, [...err.errors]);
    if (err instanceof SimProblem) return problem(reply, err.status, err.title, err.message);
    const status = err.statusCode ?? 500;
    if (status < 500) return problem(reply, status, 'Bad request', err.message);
    return problem(reply, 500, 'Simulator error', err.message);
  });
  app.setNotFoundHandler((req, reply) => problem(reply, 404, 'Not found', `no route ${req.method} ${req.url.split('?')[0] ?? ''}`));

  const platformOf = (req: FastifyRequest): PlatformSimulator => {
    const name = (req.params as { platform?: string }).platform ?? '';
    const s = byName.get(name);
    if (s) return s;
    const known = (PLATFORMS as readonly string[]).includes(name);
    throw new SimProblem(404, 'Unknown platform', known ? `no simulator for ${name} yet` : `${name} is not a platform`);
  };
  const since = (req: FastifyRequest): number => parse(SinceQuery, req.query, SINCE_SHAPE, 'query').since ?? 0;

  app.get('/_sim', async () => ({ platforms: simulators.map((s) => s.platform) }));

  app.post('/_sim/reset', async () => {
    for (const s of simulators) s.sim.reset();
    return { reset: simulators.map((s) => s.platform) };
  });
  app.post('/_sim/:platform/reset', async (req) => {
    const s = platformOf(req);
    s.sim.reset();
    return { reset: [s.platform] };
  });

  app.get('/_sim/:platform/effects', async (req) => {
    const s = platformOf(req);
    const n = since(req);
    return s.sim.effects.filter((e) => e.seq > n);
  });

  app.get('/_sim/:platform/requests', async (req) => {
    const s = platformOf(req);
    const n = since(req);
    return s.sim.requests.filter((r) => r.seq > n);
  });

  app.get('/_sim/:platform/orders', async (req) => [...platformOf(req).sim.orders.values()]);

  app.post('/_sim/:platform/orders', async (req, reply) => {
    const s = platformOf(req);
    const body = parse(OrderBody, req.body, ORDER_SHAPE);
    if (s.showExists && !s.showExists(body.externalId)) {
      throw new SimProblem(404, 'Show not found', `${s.platform} has no show ${body.externalId}`);
    }
    s.checkOrder?.(body);
    const order = s.sim.createOrder(body);
    await s.onOrderCreated?.(order);
    return reply.code(201).send({ orderId: order.orderId });
  });

  // The order report lists the order a second time, in other data (or the same): what a platform's
  // report may do, which the service must not take as two orders nor heal on a guess. No webhook.
  app.post('/_sim/:platform/orders/:orderId/copies', async (req, reply) => {
    const s = platformOf(req);
    if (!s.listsOrderCopies) throw new SimProblem(404, 'Not supported', `${s.platform}'s simulated order report lists no order twice`);
    const { orderId } = req.params as { orderId: string };
    const body = parse(OrderCopyBody, req.body, ORDER_COPY_SHAPE);
    const order = s.sim.orders.get(orderId);
    if (!order) throw new SimProblem(404, 'Order not found', `no order ${orderId} on ${s.platform}`);
    // A report is one account's: another account's show (or none) cannot list this account's order.
    if (body.externalId !== undefined && (!(s.showExists?.(body.externalId) ?? true) || !s.listsOrderCopies(order.externalId, body.externalId))) {
      throw new SimProblem(404, 'Show not found', `${s.platform} has no show ${body.externalId} on the order's account`);
    }
    const copy = s.sim.copyOrder(orderId, body);
    return reply.code(201).send({ orderId: copy.orderId });
  });

  app.post('/_sim/:platform/orders/:orderId/refunds', async (req, reply) => {
    const s = platformOf(req);
    const { orderId } = req.params as { orderId: string };
    const body = parse(RefundBody, req.body, REFUND_SHAPE);
    const { order, refund } = s.sim.refundOrder(orderId, body.amount);
    await s.onOrderRefunded?.(order, refund);
    return reply.code(201).send({ refundId: refund.refundId });
  });

  app.post('/_sim/:platform/shows', async (req, reply) => {
    const s = platformOf(req);
    const body = parse(ShowBody, req.body, SHOW_SHAPE);
    if (!s.createShowByHand) throw new SimProblem(404, 'Not supported', `${s.platform} has no hand-made shows`);
    const externalId = s.createShowByHand(body.title, body.account);
    // the RTMP address the platform's app shows for it (Facebook: the live video's own stream key)
    const streams = streamsOf(s.sim);
    return reply.code(201).send({ externalId, ingest: streams.ingestOf(externalId) ?? streams.issue(externalId) });
  });

  // The RTMP address the platform's app shows for a show that exists (one the API made, e.g. on
  // Bambuser, whose API gives no ingest): what an operator copies from the app to link it.
  app.get('/_sim/:platform/shows/:externalId/ingest', async (req) => {
    const s = platformOf(req);
    const { externalId } = req.params as { externalId: string };
    if (!s.showExists?.(externalId)) throw new SimProblem(404, 'Show not found', `${s.platform} has no show ${externalId}`);
    const streams = streamsOf(s.sim);
    return streams.ingestOf(externalId) ?? streams.issue(externalId);
  });

  app.get('/_sim/:platform/streams', async (req) => streamsOf(platformOf(req).sim).list());

  app.get('/_sim/:platform/webhook', async (req) => {
    const s = platformOf(req);
    return { url: s.sim.webhook?.url ?? null, deliveries: s.sim.webhookDeliveries };
  });
  app.put('/_sim/:platform/webhook', async (req) => {
    const s = platformOf(req);
    const body = parse(WebhookBody, req.body, WEBHOOK_SHAPE);
    s.sim.webhook = { url: body.url, ...(body.secret !== undefined ? { secret: body.secret } : {}) };
    return { url: body.url };
  });

  app.get('/_sim/:platform/limits', async (req) => {
    const s = platformOf(req);
    return { ...s.sim.limits, quota: s.sim.quotaUsage() };
  });
  app.put('/_sim/:platform/limits', async (req) => {
    const s = platformOf(req);
    const extra = Object.fromEntries(s.sim.extraLimitKeys().map((k) => [k, count.optional()]));
    const body = parse(BaseLimitsBody.extend(extra).strict(), req.body, limitsShape(s.sim.extraLimitKeys()));
    const patch = Object.fromEntries(Object.entries(body).filter(([, v]) => v !== undefined));
    return s.sim.setLimits(patch);
  });

  app.get('/_sim/:platform/faults', async (req) => platformOf(req).sim.faults);
  app.put('/_sim/:platform/faults', async (req) => {
    const s = platformOf(req);
    return s.sim.setFaults(parse(FaultsBody, req.body, FAULTS_SHAPE));
  });

  return app;
}

// ---------------------------------------------------------------------------------------------
// Start / stop
// ---------------------------------------------------------------------------------------------

export interface StartedSimulators {
  /** e.g. http://127.0.0.1:4100 — a target's baseUrl is `${url}/${platform}`. */
  url: string;
  port: number;
  app: FastifyInstance;
  /** In-process access to each platform's state (tests, bench); the HTTP /_sim API is the contract. */
  simulators: ReadonlyMap<Platform, PlatformSimulator>;
  /** The RTMP sinks every handed-out ingest address points at: `rtmp://{host}:{rtmpPort}/{platform}`. */
  rtmpUrl: string;
  rtmpPort: number;
  close(): Promise<void>;
}

/** `rtmpPort`: the RTMP sinks' port (`npm run sim`: SIM_RTMP_PORT, default 1936); default here 0 = any free port. */
export async function startSimulators(opts: { port?: number; host?: string; logger?: boolean; rtmpPort?: number } = {}): Promise<StartedSimulators> {
  const host = opts.host ?? '127.0.0.1';
  const simulators = PLATFORM_SIMULATORS.map((f) => f());
  const sink = await RtmpSink.start({ port: opts.rtmpPort ?? 0, host, streams: simulators.map((s) => streamsOf(s.sim)) });
  const app = buildSimulatorApp({ logger: opts.logger ?? false, simulators });
  try {
    await app.listen({ port: opts.port ?? 0, host });
  } catch (err) {
    await sink.close();
    throw err;
  }
  const { port } = app.server.address() as AddressInfo;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${urlHost}:${port}`,
    port,
    app,
    simulators: new Map(simulators.map((s) => [s.platform, s])),
    rtmpUrl: sink.url,
    rtmpPort: sink.port,
    close: async () => {
      await app.close();
      await sink.close();
    },
  };
}

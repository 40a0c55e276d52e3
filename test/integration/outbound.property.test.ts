/**
 * Property (fast-check) of outbound webhook delivery (contract §8, README "Outbound webhooks"): generated
 * runs of the events the service emits — `mirror.updated` through the sync's hook (mirrorUpdatedHook),
 * `attribution.order_attributed` through the attribution of a platform order (rule 2), and
 * `reconciliation.completed` through a reconciliation run — each sent once or again (the same mirror
 * change reported by a sync run twice, the same platform order reported again, a finished run run
 * again), alone or at the same time; endpoints whose receivers answer each attempt as generated (2xx, 4xx,
 * 5xx, 410, an answer after the attempt's timeout, a connection reset), some of them for good (`410`, or
 * never a 2xx); and the delivery worker stopped and another started at random points, while events are
 * emitted and while deliveries retry (in this process, as svc.stopWorkers does: a stop waits for the
 * attempts in flight).
 *
 * What the docs promise, checked on what a real HTTP receiver on loopback got:
 * - every event reaches every enabled endpoint subscribed to its type whose receiver answers 2xx within
 *   the schedule (at least once), and its delivery ends `delivered`;
 * - one `webhook-id` per event, the same on every attempt and for every endpoint; no event under two
 *   ids, no two events under one id; every attempt signed per Standard Webhooks (the standardwebhooks
 *   library verifies it with the endpoint's secret);
 * - at most the schedule's attempts per delivery; `410` disables the endpoint at once and that
 *   delivery is not retried; an endpoint that never answers 2xx is disabled once a delivery used its
 *   whole schedule (that delivery had every attempt of it); no delivery is left pending.
 * No ordering is checked: the README says retries reorder deliveries and that neither timestamp orders
 * messages. Real Redis, real BullMQ workers (startDeliveryWorker), schedule shrunk to 4 × 20 ms.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Worker } from 'bullmq';
import fc from 'fast-check';
import { Webhook } from 'standardwebhooks';
import { newMirror } from '../../src/domain/mirror.js';
import { createRuntime, type Runtime } from '../../src/main/runtime.js';
import { startDeliveryWorker } from '../../src/outbound/delivery.worker.js';
import { mirrorUpdatedHook } from '../../src/outbound/mirror-updated.js';
import { createOutbound, type OutboundParts } from '../../src/outbound/outbound.module.js';
import { OUTBOUND_EVENT_TYPES, type OutboundEventType } from '../../src/outbound/outbound.types.js';
import { ExternalShowIndex } from '../../src/store/external-show.index.js';
import type { DeliveryJob } from '../../src/queues/delivery.queue.js';
import { runsFor } from '../helpers/redis-cluster.js';
import { createPartner, startService, type TestService } from '../helpers/service.js';
import { settled } from '../helpers/settle.js';

const SCHEDULE_MS = [20, 20, 20, 20];
const MAX_ATTEMPTS = SCHEDULE_MS.length + 1;
/** Long enough that a loaded machine does not time out an answer given at once (an extra attempt at the schedule's end fails a delivery). */
const TIMEOUT_MS = 500;

type Answer = 200 | 201 | 204 | 400 | 404 | 409 | 500 | 502 | 503 | 'slow' | 'reset';
type Kind = 'healthy' | 'gone' | 'dead';

interface Received {
  path: string;
  tag: string;
  id: string;
  headers: Record<string, string>;
  body: string;
  /** What the receiver did: a status it answered in time, or 'slow' / 'reset'. */
  answer: Answer | 410;
}

let svc: TestService;
/** The worker role's runtime: the delivery workers run on its Redis clients, as in a worker process. */
let workerRt: Runtime;
let server: Server;
let base = '';
const received: Received[] = [];
/** path → the endpoint's answers: attempt n of an event gets script(n). */
const scripts = new Map<string, (n: number) => Answer | 410>();
const lateAnswers = new Set<NodeJS.Timeout>();

/** The event a body is about: its type and the id that names it (each generated event has its own). */
function tagOf(body: string): string {
  const p = JSON.parse(body) as { type: OutboundEventType; data: { showId?: string; externalId?: string; orderId?: string; id?: string } };
  const name = p.type === 'mirror.updated' ? `${p.data.showId}/${p.data.externalId}` : p.type === 'attribution.order_attributed' ? p.data.orderId : p.data.id;
  return `${p.type}|${name}`;
}

function answer(path: string, tag: string): Answer | 410 {
  const n = received.filter((r) => r.path === path && r.tag === tag).length;
  return scripts.get(path)?.(n) ?? 200;
}

function onRequest(req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v;
    const body = Buffer.concat(chunks).toString('utf8');
    const path = req.url ?? '';
    const tag = tagOf(body);
    const a = answer(path, tag);
    received.push({ path, tag, id: headers['webhook-id'] ?? '', headers, body, answer: a });
    if (a === 'reset') {
      req.socket.destroy();
      return;
    }
    if (a === 'slow') {
      // A 200 after the attempt's deadline: the receiver took it, the sender counts a timeout.
      const t = setTimeout(() => {
        lateAnswers.delete(t);
        if (!res.destroyed) res.writeHead(200).end('late');
      }, TIMEOUT_MS + 200);
      lateAnswers.add(t);
      return;
    }
    res.writeHead(a).end('ok');
  });
}

beforeAll(async () => {
  // The API role only: this file's delivery workers are the only ones, stopped and started at will.
  svc = await startService({ env: { OUTBOUND_RETRY_SCHEDULE_MS: SCHEDULE_MS.join(','), OUTBOUND_TIMEOUT_MS: String(TIMEOUT_MS) } });
  workerRt = await createRuntime(svc.config, 'worker', { log: svc.rt.log, redisInfo: svc.rt.redisInfo });
  server = createServer(onRequest);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
}, 60_000);
afterAll(async () => {
  await stopWorker();
  for (const t of lateAnswers) clearTimeout(t);
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  await workerRt?.close();
  await svc?.close();
});

/** One delivery worker "process": its own DeliveryService (no in-memory state carried over) and Worker. */
let current: { parts: OutboundParts; worker: Worker<DeliveryJob, string> } | undefined;
async function startWorker(): Promise<void> {
  const { config, keys, log } = workerRt;
  const parts = createOutbound({ redis: workerRt.redis, keys, box: workerRt.box, config, connection: workerRt.producerConnection, log });
  const worker = startDeliveryWorker(parts.delivery, { connection: workerRt.bullConnection('worker'), keys, concurrency: config.outboundConcurrency, lockDurationMs: config.workerLockMs, attemptTimeoutMs: config.outboundTimeoutMs, log });
  current = { parts, worker };
  // Started, as a process is before it stops: a worker or queue closed while still connecting errs.
  await Promise.all([worker.waitUntilReady(), parts.outbound.queue.waitUntilReady()]);
}
async function stopWorker(): Promise<void> {
  const c = current;
  current = undefined;
  if (!c) return;
  await c.worker.close();
  await c.parts.outbound.close();
}
async function restartWorker(gapMs: number): Promise<void> {
  await stopWorker();
  if (gapMs > 0) await sleep(gapMs);
  await startWorker();
}
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const failing = fc.constantFrom<Answer>(400, 404, 409, 500, 502, 503, 'slow', 'reset');
const fastFailing = fc.constantFrom<Answer>(400, 404, 500, 503, 'reset');
const endpointArb = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant<Kind>('healthy'), fails: fc.array(failing, { maxLength: MAX_ATTEMPTS - 1 }), ok: fc.constantFrom<Answer>(200, 201, 204) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant<Kind>('gone'), fails: fc.array(fastFailing, { maxLength: 2 }), ok: fc.constant<Answer>(200) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant<Kind>('dead'), fails: fc.array(fastFailing, { minLength: 1, maxLength: 3 }), ok: fc.constant<Answer>(200) }) },
);
const subscribed = fc.subarray([...OUTBOUND_EVENT_TYPES], { minLength: 1 });
const sourceEvent = fc.record({
  type: fc.constantFrom<OutboundEventType>(...OUTBOUND_EVENT_TYPES),
  /** A mirror change: of which show (a show's mirror changes more than once). */
  show: fc.constantFrom(0, 0, 1),
  /** How often the source reports it (1 = once). */
  copies: fc.integer({ min: 1, max: 3 }),
  /** Reported again at the same time rather than one after the other. */
  together: fc.boolean(),
  /** The delivery worker is restarted right after this event (with a gap of this many ms), or not (-1). */
  restartGapMs: fc.oneof({ weight: 3, arbitrary: fc.constant(-1) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 40 }) }),
});
const scenario = fc.record({
  endpoints: fc.array(fc.tuple(endpointArb, subscribed), { minLength: 1, maxLength: 3 }),
  events: fc.array(sourceEvent, { minLength: 1, maxLength: 6 }),
  workerFromStart: fc.boolean(),
  /** Restarts while the deliveries retry: ms after the last event. */
  drainRestarts: fc.array(fc.integer({ min: 0, max: 200 }), { maxLength: 2 }),
});
type Scenario = typeof scenario extends fc.Arbitrary<infer T> ? T : never;

let runNo = 0;

async function runScenario(s: Scenario): Promise<void> {
  const run = ++runNo;
  const p = `pp${run}`;
  await createPartner(svc, p);
  const eps: { id: string; path: string; secret: string; kind: Kind; events: OutboundEventType[]; fails: Answer[] }[] = [];
  for (const [k, [e, events]] of s.endpoints.entries()) {
    const path = `/r${run}/e${k}`;
    const last: Answer | 410 = e.kind === 'gone' ? 410 : e.ok;
    // Attempt n (0-based over the event's attempts at this endpoint): the generated failures, then the
    // endpoint's final answer — a dead endpoint repeats its failures for ever.
    scripts.set(path, e.kind === 'dead' ? (n) => e.fails[n % e.fails.length]! : (n) => (n < e.fails.length ? e.fails[n]! : last));
    const r = await svc.api(`/v1/partners/${p}/endpoints`, { json: { url: base + path, events } });
    expect(r.status).toBe(201);
    const body = (await r.json()) as { id: string; secret: string };
    eps.push({ id: body.id, path, secret: body.secret, kind: e.kind, events, fails: e.fails });
  }

  // The sources: each generated event is its own mirror change, platform order or reconciliation run.
  const notify = mirrorUpdatedHook(svc.rt.outbound, svc.rt.log);
  const index = new ExternalShowIndex(svc.rt.redis, svc.rt.keys);
  const from = new Date(Date.now() - 3_600_000);
  const to = new Date();
  const tags: string[] = [];
  if (s.workerFromStart) await startWorker();
  for (const [i, ev] of s.events.entries()) {
    let report: () => Promise<unknown>;
    if (ev.type === 'mirror.updated') {
      // Another change of the show's mirror: its remote show (a relink), at the same synced version.
      const showId = `s${ev.show}`;
      const externalId = `x${run}x${i}`;
      const m = { ...newMirror('yt', 'youtube'), state: 'live' as const, syncedVersion: 2, remote: { externalId, url: `https://youtube.example/${externalId}`, ingest: undefined, data: {} } };
      report = () => notify(p, showId, m, { enabled: true });
      tags.push(`mirror.updated|${showId}/${externalId}`);
    } else if (ev.type === 'attribution.order_attributed') {
      const orderId = `o${i}`;
      await index.set(`tt${run}`, `room${i}`, `show${i}`);
      const order = { orderId, externalShowId: `room${i}`, productId: 'sku-1', clickId: undefined, createdAt: new Date().toISOString(), total: { amount: 1000 + i, currency: 'USD' }, refunded: { amount: 0, currency: 'USD' }, status: 'COMPLETED', commission: undefined };
      report = () => svc.rt.attribution.ingestPlatformOrders(p, `tt${run}`, [order], 'webhook');
      tags.push(`attribution.order_attributed|${orderId}`);
    } else {
      const rec = await svc.rt.reconcile.request(p, from, to, 'manual');
      report = () => svc.rt.reconcile.run(rec.id);
      tags.push(`reconciliation.completed|${rec.id}`);
    }
    if (ev.together) await Promise.all(Array.from({ length: ev.copies }, () => report()));
    else for (let c = 0; c < ev.copies; c++) await report();
    if (ev.restartGapMs >= 0) await restartWorker(ev.restartGapMs);
  }
  if (!current) await startWorker();
  let restarts = Promise.resolve();
  for (const at of [...s.drainRestarts].sort((a, b) => a - b)) restarts = restarts.then(() => sleep(at)).then(() => restartWorker(0));
  await restarts;
  await settled([svc.rt.outbound.queue], 20_000);
  while (lateAnswers.size > 0) await sleep(20);

  // What the receiver got, per event.
  const mine = received.filter((r) => r.path.startsWith(`/r${run}/`));
  const idsOf = new Map<string, Set<string>>();
  const tagsOf = new Map<string, Set<string>>();
  for (const r of mine) {
    idsOf.set(r.tag, (idsOf.get(r.tag) ?? new Set()).add(r.id));
    tagsOf.set(r.id, (tagsOf.get(r.id) ?? new Set()).add(r.tag));
  }
  // One webhook-id per event (every attempt, every endpoint), and one event per webhook-id.
  for (const [tag, ids] of idsOf) expect([tag, [...ids]]).toEqual([tag, [expect.stringMatching(/^msg_/)]]);
  for (const [id, ts] of tagsOf) expect([id, [...ts]]).toEqual([id, [expect.any(String)]]);
  for (const r of mine) expect(tags).toContain(r.tag);

  for (const ep of eps) {
    const wh = new Webhook(ep.secret);
    const at = mine.filter((r) => r.path === ep.path);
    for (const r of at) expect(() => wh.verify(r.body, r.headers)).not.toThrow();
    // Only the types it subscribes to.
    for (const r of at) expect(ep.events).toContain(r.tag.split('|')[0]);
    const perEvent = new Map<string, Received[]>();
    for (const r of at) perEvent.set(r.tag, [...(perEvent.get(r.tag) ?? []), r]);
    // At most the schedule's attempts per delivery.
    for (const [tag, rs] of perEvent) expect([tag, rs.length <= MAX_ATTEMPTS]).toEqual([tag, true]);
    const view = (await svc.rt.outbound.endpoints.get(p, ep.id))!;
    const expected = tags.filter((t) => ep.events.includes(t.split('|')[0] as OutboundEventType));
    if (ep.kind === 'healthy') {
      expect(view.enabled).toBe(true);
      for (const tag of expected) {
        // Delivered: answered 2xx in time at least once, and the message says so.
        const rs = perEvent.get(tag) ?? [];
        expect([tag, rs.some((r) => typeof r.answer === 'number' && r.answer < 300)]).toEqual([tag, true]);
        const msg = await svc.rt.outbound.message(p, rs[0]!.id);
        expect([tag, msg?.deliveries.find((d) => d.endpointId === ep.id)?.state]).toEqual([tag, 'delivered']);
      }
      continue;
    }
    if (ep.kind === 'gone') {
      const gone = at.findIndex((r) => r.answer === 410);
      if (gone >= 0) {
        expect(view).toMatchObject({ enabled: false, disabledReason: expect.stringContaining('410') });
        // The delivery answered 410 is not tried again.
        expect(at.slice(gone + 1).filter((r) => r.tag === at[gone]!.tag)).toEqual([]);
      }
    } else if (at.length > 0) {
      // Never a 2xx: disabled once a delivery used the whole schedule, which that delivery did.
      expect(view.enabled).toBe(false);
      expect([...perEvent.values()].some((rs) => rs.length === MAX_ATTEMPTS)).toBe(true);
    }
    // Whatever was sent to a gone or dead endpoint: each of its deliveries ended (none left pending), none delivered.
    for (const rs of perEvent.values()) {
      const msg = await svc.rt.outbound.message(p, rs[0]!.id);
      expect(msg?.deliveries.find((d) => d.endpointId === ep.id)?.state).toBe('failed');
    }
  }
  // No delivery of any message the receiver saw is left pending.
  for (const id of tagsOf.keys()) {
    const msg = await svc.rt.outbound.message(p, id);
    expect([id, msg?.deliveries.filter((d) => d.state === 'pending')]).toEqual([id, []]);
  }
  await stopWorker();
}

test('outbound deliveries: at least once per event and endpoint, one webhook-id per event, signed, given up as documented — across duplicates, failures and worker restarts', async () => {
  await fc.assert(
    fc.asyncProperty(scenario, runScenario),
    // Out of time before every run passed is a failure, not a pass.
    { numRuns: runsFor(15), endOnFailure: true, interruptAfterTimeLimit: 100_000, markInterruptAsFailure: true },
  );
}, 120_000);

/**
 * Time constants at their boundaries (issue 13): the commission hold (COMMISSION_HOLD_DAYS) and the
 * inbox TTL (INBOX_TTL_DAYS, webhook-id dedupe and outbound message keys) are days. Each is checked just
 * before and just after its edge, through the runtime that `npm start` builds from the configuration,
 * so a unit slip (hours for days, seconds for days) fails here. Real redis-server, real HTTP.
 */
import { AttributionService } from '../../src/attribution/attribution.service.js';
import { loadConfig } from '../../src/config/config.js';
import type { PartnerEvent } from '../../src/domain/events.js';
import { sha256Hex } from '../../src/lib/crypto.js';
import { AttributionRepository } from '../../src/store/attribution.repository.js';
import { ExternalShowIndex } from '../../src/store/external-show.index.js';
import { keysMatching } from '../helpers/redis-cluster.js';
import { createPartner, sampleShow, sendEvent, showEvent, startService, type TestService } from '../helpers/service.js';

const DAY_MS = 86_400_000;
const HOLD_DAYS = 2;
const INBOX_DAYS = 2;
const P = 'clock';
const iso = (ms: number): string => new Date(ms).toISOString();

let svc: TestService;
let secret: string;

beforeAll(async () => {
  // Not the defaults (30): a constant that ignored the setting would not pass either.
  svc = await startService({ env: { COMMISSION_HOLD_DAYS: String(HOLD_DAYS), INBOX_TTL_DAYS: String(INBOX_DAYS) } });
  secret = await createPartner(svc, P, { attributionWindowHours: 24 * 90 });
  const t = await svc.api(`/v1/partners/${P}/targets?verify=false`, { json: { id: 'yt', platform: 'youtube', name: 'yt', credentials: { token: 'x' }, commissionRateBps: 1000, enabled: false } });
  expect(t.status).toBe(201);
});
afterAll(async () => {
  await svc?.close();
});

test('the defaults are 30 days each (README configuration table)', () => {
  const c = loadConfig({}, '/nonexistent');
  expect(c.commissionHoldDays).toBe(30);
  expect(c.inboxTtlDays).toBe(30);
});

/** A click on the (show, target, product) link at `atMs`; returns its id. */
async function click(atMs: number): Promise<string> {
  const url = await svc.rt.links.ensure({ partnerId: P, showId: 's1', targetId: 'yt', platform: 'youtube', productId: 'p1', url: 'https://shop.example.com/p1' });
  const link = await svc.rt.links.find(url.split('/l/')[1]!);
  return (await svc.rt.links.recordClick(link!, '203.0.113.9', atMs)).id;
}

function orderEvent(id: string, clickId: string, createdAtMs: number, amount = 10_000): PartnerEvent {
  return { type: 'order.created', occurredAt: iso(createdAtMs), data: { order: { id, clickId, createdAt: iso(createdAtMs), lines: [], total: { amount, currency: 'USD' } } } } as unknown as PartnerEvent;
}

function refundEvent(orderId: string, id: string, atMs: number, amount: number): PartnerEvent {
  return { type: 'order.refunded', occurredAt: iso(atMs), data: { refund: { id, orderId, createdAt: iso(atMs), amount: { amount, currency: 'USD' } } } } as unknown as PartnerEvent;
}

async function statusOverApi(orderId: string): Promise<string> {
  const r = await svc.api(`/v1/partners/${P}/attribution/orders/${orderId}`);
  expect(r.status).toBe(200);
  return ((await r.json()) as { status: string }).status;
}

describe('commission hold (COMMISSION_HOLD_DAYS)', () => {
  test('through the runtime: an order a minute short of the hold is pending, a minute past it approved', async () => {
    const now = Date.now();
    const c = await click(now - HOLD_DAYS * DAY_MS - 5 * 60_000);
    await svc.rt.attribution.handlePartnerEvent(P, orderEvent('hold-short', c, now - HOLD_DAYS * DAY_MS + 60_000));
    await svc.rt.attribution.handlePartnerEvent(P, orderEvent('hold-past', c, now - HOLD_DAYS * DAY_MS - 60_000));
    expect(await statusOverApi('hold-short')).toBe('pending');
    expect(await statusOverApi('hold-past')).toBe('approved');
    // The accrual records what the commission was when it was booked.
    expect((await svc.rt.attribution.order(P, 'hold-short'))!.entries[0]).toMatchObject({ kind: 'accrual', against: 'pending' });
    expect((await svc.rt.attribution.order(P, 'hold-past'))!.entries[0]).toMatchObject({ kind: 'accrual', against: 'approved' });
  });

  test('to the millisecond: pending at createdAt + hold − 1 ms, approved at createdAt + hold; refunds on either side are booked against that status', async () => {
    let clock = 0;
    const service = new AttributionService({
      repo: new AttributionRepository(svc.rt.redis, svc.rt.keys),
      partners: svc.rt.partners,
      links: svc.rt.links,
      externalShows: new ExternalShowIndex(svc.rt.redis, svc.rt.keys),
      log: svc.rt.log,
      holdDays: svc.config.commissionHoldDays,
      now: () => clock,
    });
    const T = Date.parse('2026-11-24T18:00:00.000Z');
    const edge = T + HOLD_DAYS * DAY_MS;
    const c = await click(T - 60_000);
    clock = T + 1000;
    await service.handlePartnerEvent(P, orderEvent('hold-edge', c, T));

    clock = edge - 1;
    expect((await service.order(P, 'hold-edge'))!.status).toBe('pending');
    expect((await service.showReport(P, 's1', { fromMs: T, toMs: T + 1 })).byTarget).toEqual([expect.objectContaining({ commissionPending: 1000, commissionApproved: 0 })]);
    await service.handlePartnerEvent(P, refundEvent('hold-edge', 'hold-edge-r1', clock, 1000));

    clock = edge;
    expect((await service.order(P, 'hold-edge'))!.status).toBe('approved');
    expect((await service.showReport(P, 's1', { fromMs: T, toMs: T + 1 })).byTarget).toEqual([expect.objectContaining({ commissionPending: 0, commissionApproved: 900 })]);
    await service.handlePartnerEvent(P, refundEvent('hold-edge', 'hold-edge-r2', clock, 1000));

    const v = (await service.order(P, 'hold-edge'))!;
    expect(v.entries.map((e) => [e.kind, e.amount, e.against])).toEqual([
      ['accrual', 1000, 'pending'],
      ['reversal', 100, 'pending'],
      ['reversal', 100, 'approved'],
    ]);
  });
});

/** Every key in the test Redis (every master of a cluster) whose name contains `needle`, with its TTL in seconds. */
async function keysWith(needle: string): Promise<{ key: string; ttl: number }[]> {
  const out: { key: string; ttl: number }[] = [];
  const keys = await keysMatching(svc.rt.redis, `${svc.rt.keys.prefix}*`);
  for (const key of keys.filter((k) => k.includes(needle))) out.push({ key, ttl: await svc.rt.redis.ttl(key) });
  return out;
}

/** Alive just before INBOX_TTL_DAYS are over (more than a minute left), gone just after (never longer). */
function expectDaysTtl(keys: { key: string; ttl: number }[]): void {
  expect(keys.length).toBeGreaterThan(0);
  for (const k of keys) {
    expect({ key: k.key, aliveAMinuteBeforeTheEdge: k.ttl > INBOX_DAYS * 86_400 - 60 }).toEqual({ key: k.key, aliveAMinuteBeforeTheEdge: true });
    expect({ key: k.key, goneAfterTheEdge: k.ttl <= INBOX_DAYS * 86_400 }).toEqual({ key: k.key, goneAfterTheEdge: true });
  }
}

describe('inbox TTL (INBOX_TTL_DAYS)', () => {
  test('a show event’s and an order event’s webhook-id are remembered for the configured days, and dedupe meanwhile', async () => {
    const showHook = 'hook-show-ttl-1';
    const orderHook = 'hook-order-ttl-1';
    expect((await sendEvent(svc, P, secret, showEvent('show.scheduled', sampleShow('ttl-show'), '2026-11-24T10:00:00Z'), { webhookId: showHook })).status).toBe(202);
    const order = { type: 'order.created', occurredAt: '2026-11-24T18:05:00Z', data: { order: { id: 'ttl-order', createdAt: '2026-11-24T18:05:00Z', lines: [], total: { amount: 100, currency: 'USD' } } } };
    expect((await sendEvent(svc, P, secret, order, { webhookId: orderHook })).status).toBe(202);
    // On a cluster a delivery also tracks its claim token in the claim's held set, kept a minute
    // (CLAIM_PROVISIONAL_SEC), not days: not an inbox key.
    const held = (hook: string): string => svc.rt.keys.partnerWebhookIdHeld(P, hook);
    expectDaysTtl((await keysWith(showHook)).filter((k) => k.key !== held(showHook)));
    expectDaysTtl((await keysWith(orderHook)).filter((k) => k.key !== held(orderHook)));
    // Still remembered: a redelivery is a duplicate.
    const again = await sendEvent(svc, P, secret, order, { webhookId: orderHook });
    expect(again.status).toBe(200);
    expect(await again.json()).toMatchObject({ duplicate: true });
  });

  test('an outbound message and its idempotency key are kept for the configured days', async () => {
    const ep = await svc.api(`/v1/partners/${P}/endpoints`, { json: { url: 'http://127.0.0.1:9/hook', events: ['mirror.updated'] } });
    expect(ep.status).toBe(201);
    const { messageId } = await svc.rt.outbound.emit(P, 'mirror.updated', { n: 1 }, 'ttl-idempotency-1');
    expect(messageId).toBeTruthy();
    const message = svc.rt.keys.outboundMessage(P, messageId!);
    expectDaysTtl([{ key: message, ttl: await svc.rt.redis.ttl(message) }]);
    const claim = svc.rt.keys.outboundIdempotency(P, sha256Hex('ttl-idempotency-1'));
    expect(await svc.rt.redis.get(claim)).toBe(messageId);
    expectDaysTtl([{ key: claim, ttl: await svc.rt.redis.ttl(claim) }]);
  });
});

/**
 * Outside ids are data, never property names (issue 8 item 1). Every property name of
 * Object.prototype (`__proto__`, `constructor`, `toString`, `hasOwnProperty`, `valueOf`, …) matches the
 * contract's id pattern, so each one is used as a partner, target, show, product, order and refund id,
 * through HTTP against the service with its workers, and the process must stay healthy: every event
 * is accepted, every pin reaches `pinned` on the platform, orders reach the ledger, later events are
 * 2xx, /metrics answers, and Object.prototype is left exactly as it was.
 */
import { createPartner, sendEvent, showEvent, startService, waitFor, type TestService } from '../helpers/service.js';
import { startSim, type TestSim } from '../helpers/sim.js';
import { CREDENTIALS } from '../helpers/platforms.js';

const NAMES = Object.getOwnPropertyNames(Object.prototype).sort();
const PROTO_BEFORE = Object.getOwnPropertyNames(Object.prototype).sort();

let svc: TestService;
let sim: TestSim;
const secrets = new Map<string, string>();

interface ShowDoc {
  mirrors: { targetId: string; state: string; pins: { productId: string; state: string; linkUrl: string | null }[] }[];
}

const product = (id: string): Record<string, unknown> => ({ id, title: `Product ${id}`, price: { amount: 1000, currency: 'USD' }, url: `https://shop.example.com/${encodeURIComponent(id)}` });

function show(id: string, products: string[], state = 'live'): Record<string, unknown> {
  return { id, title: `Show ${id}`, scheduledAt: '2026-11-24T18:00:00Z', state, products: products.map(product), pinnedProductIds: [] };
}

async function view(partnerId: string, showId: string): Promise<ShowDoc> {
  const r = await svc.api(`/v1/partners/${encodeURIComponent(partnerId)}/shows/${encodeURIComponent(showId)}`);
  expect(r.status).toBe(200);
  return (await r.json()) as ShowDoc;
}

async function healthy(): Promise<void> {
  const m = await fetch(`${svc.url}/metrics`);
  expect(m.status).toBe(200);
  expect(await m.text()).toContain('syndicast_events_total');
  expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(PROTO_BEFORE);
  const probe: Record<string, unknown> = {};
  for (const k of ['state', 'linkUrl', 'ref', 'at', 'episode', 'dueAt']) expect(probe[k]).toBeUndefined();
}

beforeAll(async () => {
  sim = await startSim();
  // no video is pushed here: a simulated encoder makes YouTube's bound stream active (docs/testing.md)
  await sim.control('PUT', '/_sim/youtube/limits', { simulatedEncoder: 1 });
  await sim.control('PUT', '/_sim/youtube/limits', { streamActivationMs: 0 });
  svc = await startService({ workers: true });
  for (const n of NAMES) {
    secrets.set(n, await createPartner(svc, n));
    const r = await svc.api(`/v1/partners/${encodeURIComponent(n)}/targets`, {
      json: { id: n, platform: 'youtube', name: `YT ${n}`, credentials: CREDENTIALS.youtube, baseUrl: sim.base('youtube'), commissionRateBps: 1000 },
    });
    expect(r.status).toBe(201);
  }
}, 60_000);
afterAll(async () => {
  await svc?.close();
  await sim?.close();
});

test('Object.prototype names as partner, target, show and product ids: every pin reaches pinned, the process stays healthy', async () => {
  expect(NAMES).toEqual(expect.arrayContaining(['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf']));
  // Partner `p` has target `p` and show `p`; its show offers every name as a product and `p` pins all of them.
  for (const p of NAMES) {
    const secret = secrets.get(p)!;
    expect((await sendEvent(svc, p, secret, showEvent('show.live', show(p, NAMES), '2026-11-24T18:00:00Z'))).status).toBe(202);
    for (const productId of NAMES) {
      const r = await sendEvent(svc, p, secret, { type: 'product.pinned', occurredAt: '2026-11-24T18:05:00Z', data: { showId: p, productId } });
      expect(r.status).toBe(202);
    }
    // A product update keyed by the same names (the desired state's product registers).
    const upd = await sendEvent(svc, p, secret, { type: 'product.updated', occurredAt: '2026-11-24T18:06:00Z', data: { showId: p, product: product(p) } });
    expect(upd.status).toBe(202);
    await healthy();
  }
  for (const p of NAMES) {
    const pins = await waitFor(async () => {
      const m = (await view(p, p)).mirrors.find((x) => x.targetId === p);
      return m && m.pins.length === NAMES.length && m.pins.every((x) => x.state === 'pinned') ? m.pins : undefined;
    }, 60_000);
    expect(pins.map((x) => x.productId).sort()).toEqual(NAMES);
    for (const pin of pins) expect(pin.linkUrl).toMatch(/\/l\/[A-Za-z0-9_-]+$/);
  }
  // Each product reached the platform once per show.
  const pinEffects = (await sim.effects('youtube')).filter((e) => e.type === 'message.posted');
  expect(pinEffects).toHaveLength(NAMES.length * NAMES.length);
  await healthy();
}, 120_000);

test('Object.prototype names as order and refund ids reach the ledger; later events are still 2xx', async () => {
  for (const p of NAMES) {
    const secret = secrets.get(p)!;
    for (const orderId of NAMES) {
      const created = {
        type: 'order.created',
        occurredAt: '2026-11-24T18:30:00Z',
        data: { order: { id: orderId, showId: p, createdAt: '2026-11-24T18:30:00Z', lines: [{ productId: orderId, quantity: 1, amount: { amount: 1000, currency: 'USD' } }], total: { amount: 1000, currency: 'USD' } } },
      };
      expect((await sendEvent(svc, p, secret, created)).status).toBe(202);
      const refund = { type: 'order.refunded', occurredAt: '2026-11-24T18:40:00Z', data: { refund: { id: orderId, orderId, createdAt: '2026-11-24T18:40:00Z', amount: { amount: 400, currency: 'USD' } } } };
      expect((await sendEvent(svc, p, secret, refund)).status).toBe(202);
    }
  }
  for (const p of ['__proto__', 'constructor', 'toString']) {
    for (const orderId of NAMES) {
      const o = await waitFor(async () => {
        const r = await svc.api(`/v1/partners/${encodeURIComponent(p)}/attribution/orders/${encodeURIComponent(orderId)}`);
        if (r.status === 404) return undefined;
        expect(r.status).toBe(200);
        const v = (await r.json()) as { orderId: string; refundedAmount: number; total: { amount: number } };
        return v.refundedAmount === 400 ? v : undefined;
      }, 30_000);
      expect(o).toMatchObject({ orderId, total: { amount: 1000 } });
    }
  }
  // The process still answers normal events and its metrics.
  const later = await sendEvent(svc, '__proto__', secrets.get('__proto__')!, showEvent('show.updated', show('later', ['p1'], 'scheduled'), '2026-11-24T19:00:00Z'));
  expect(later.status).toBe(202);
  await healthy();
}, 120_000);

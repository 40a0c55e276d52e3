/**
 * Show snapshots the shape allows but no platform can take (attack on npm start, 2026-12-02):
 *  - a product id listed twice in one snapshot was accepted; the mirror pinned the last one (Bambuser
 *    showed "A2" at its price) while the tracked link redirected to the first one's page. Now a 400
 *    naming the repeat;
 *  - a show title of spaces (or of characters the adapters remove, platform-text.ts) was accepted and
 *    the YouTube mirror failed for good with titleRequired. Now a 400 naming the title, for product
 *    titles (snapshot and product.updated) too.
 * Both refusals store nothing; ordinary titles (emoji, right-to-left text, padding) still pass.
 * Real redis-server, real HTTP.
 */
import { createPartner, sampleShow, sendEvent, showEvent, startService, type TestService } from '../helpers/service.js';

let svc: TestService;
let secret: string;
const PARTNER = 'snapi';
let seq = 0;

beforeAll(async () => {
  svc = await startService();
  secret = await createPartner(svc, PARTNER);
});
afterAll(async () => {
  await svc.close();
});

interface Problem {
  status: number;
  errors?: { path: string; message: string }[];
}

async function storedKeys(): Promise<string[]> {
  const p = svc.config.keyPrefix;
  const [shows, orders] = await Promise.all([svc.rt.redis.keys(`${p}:{s:*`), svc.rt.redis.keys(`${p}:{o:*`)]);
  return [...shows, ...orders].sort();
}

async function refused(event: unknown): Promise<Problem> {
  const before = await storedKeys();
  const r = await sendEvent(svc, PARTNER, secret, event, { webhookId: `msg_snapi_${++seq}` });
  expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const p = (await r.json()) as Problem;
  expect({ status: r.status, body: p }).toMatchObject({ status: 400, body: { status: 400 } });
  expect(await storedKeys()).toEqual(before);
  return p;
}

const product = (id: string, title: string, amount = 100): Record<string, unknown> => ({
  id,
  title,
  price: { amount, currency: 'USD' },
  url: `https://shop.example.com/${id}-${amount}`,
});
const AT = '2026-11-24T17:00:00Z';

test('a product id twice in one snapshot → 400 naming the repeat, nothing stored', async () => {
  const show = sampleShow('dup1', { products: [product('a', 'A'), product('b', 'B'), product('a', 'A2', 200)], pinnedProductIds: ['a'] });
  for (const type of ['show.scheduled', 'show.updated', 'show.live']) {
    const p = await refused(showEvent(type, show, AT));
    expect(p.errors).toEqual([{ path: 'data.show.products.2.id', message: expect.stringMatching(/duplicate product id a \(also data\.show\.products\.0\)/) as unknown as string }]);
  }
});

test.each([
  ['spaces', '   '],
  ['a tab and a line feed', '\t\n'],
  ['no-break and ideographic spaces', '\u00a0\u3000'],
  ['a NUL and a right-to-left override', '\u0000\u202e'],
])('a show title of %s → 400 on data.show.title, nothing stored', async (_name, title) => {
  const p = await refused(showEvent('show.scheduled', sampleShow(`blank${++seq}`, { title }), AT));
  expect(p.errors?.map((e) => e.path)).toEqual(['data.show.title']);
});

test('a blank product title → 400, in a snapshot and in product.updated', async () => {
  const p1 = await refused(showEvent('show.scheduled', sampleShow('blankp', { products: [product('a', 'A'), product('b', ' \u0007 ')] }), AT));
  expect(p1.errors?.map((e) => e.path)).toEqual(['data.show.products.1.title']);
  const p2 = await refused({ type: 'product.updated', occurredAt: AT, data: { showId: 'blankp', product: product('b', '  ') } });
  expect(p2.errors?.map((e) => e.path)).toEqual(['data.product.title']);
});

test('ordinary titles still pass: emoji, right-to-left text, padding, one visible character', async () => {
  for (const title of ['🛍️✨', 'عرض مباشر', '  Padded  ', 'x', '\u200f!']) {
    const r = await sendEvent(svc, PARTNER, secret, showEvent('show.scheduled', sampleShow(`ok${++seq}`, { title, products: [product('a', title)] }), AT), { webhookId: `msg_snapi_${++seq}` });
    expect({ title, status: r.status }).toEqual({ title, status: 202 });
  }
});

/**
 * Show snapshots the event schema allows but no platform takes as they are: a product id listed twice,
 * and a show or product title that is blank once control and bidi characters are removed. Both are
 * ACCEPTED (202, stored, the show view has them): the contract's Show has no uniqueness or visible-text
 * rule, and a partner's show must not be refused over a label. What makes them safe happens later:
 *  - a repeated id: the last one listed counts for the mirror (deriveDesired) and for the tracked link
 *    (productOf) alike (test/unit/desired-state.duplicate-product.test.ts; the attack on npm start of
 *    2026-12-02 saw Bambuser pin the last while the link went to the first one's page);
 *  - a blank title goes out as `Live show` / `Product` (test/integration/platform-text.adapters.test.ts).
 * Real redis-server, real HTTP.
 */
import { sampleShow, sendEvent, showEvent, servicePerFile, type TestService } from '../helpers/service.js';

let svc: TestService;
let secret: string;
const PARTNER = 'snapi';
let seq = 0;

servicePerFile(PARTNER, (started) => ({ svc, secret } = started));

const product = (id: string, title: string, amount = 100): Record<string, unknown> => ({
  id,
  title,
  price: { amount, currency: 'USD' },
  url: `https://shop.example.com/${id}-${amount}`,
});
const AT = '2026-11-24T17:00:00Z';

async function accepted(event: unknown): Promise<void> {
  const r = await sendEvent(svc, PARTNER, secret, event, { webhookId: `msg_snapi_${++seq}` });
  expect({ status: r.status, body: (await r.json()) as unknown }).toMatchObject({ status: 202, body: { duplicate: false } });
}

interface ShowView {
  title: string;
  products: { id: string; title: string; price: { amount: number } }[];
}
async function view(showId: string): Promise<ShowView> {
  const r = await svc.api(`/v1/partners/${PARTNER}/shows/${showId}`);
  expect(r.status).toBe(200);
  return ((await r.json()) as { show: ShowView }).show;
}

test('a product id twice in one snapshot is accepted; the last one listed is the product', async () => {
  const show = sampleShow('dup1', { products: [product('a', 'A'), product('b', 'B'), product('a', 'A2', 200)], pinnedProductIds: ['a'] });
  await accepted(showEvent('show.scheduled', show, AT));
  expect((await view('dup1')).products.map((p) => [p.id, p.title, p.price.amount])).toEqual([
    ['a', 'A2', 200],
    ['b', 'B', 100],
  ]);
});

test.each([
  ['spaces', '   '],
  ['a tab and a line feed', '\t\n'],
  ['no-break and ideographic spaces', '\u00a0\u3000'],
  ['a NUL and a right-to-left override', '\u0000\u202e'],
])('a show title of %s is accepted and kept as the partner sent it', async (_name, title) => {
  const id = `blank${++seq}`;
  await accepted(showEvent('show.scheduled', sampleShow(id, { title, products: [product('a', ' \u0007 ')] }), AT));
  const v = await view(id);
  expect([v.title, v.products[0]?.title]).toEqual([title, ' \u0007 ']);
});

test('a blank product title in product.updated is accepted', async () => {
  await accepted(showEvent('show.scheduled', sampleShow('blankp', { products: [product('a', 'A')] }), AT));
  await accepted({ type: 'product.updated', occurredAt: '2026-11-24T17:05:00Z', data: { showId: 'blankp', product: product('a', '  ') } });
});

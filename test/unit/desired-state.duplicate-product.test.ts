/**
 * A snapshot that lists a product id twice (accepted: the last one listed counts): the tracked link's product
 * (productOf, what the redirect reads) must be the one the
 * mirror pins (deriveDesired). deriveDesired took the last, productOf the first: on npm start the
 * Bambuser pin showed "A2" and the click went to A's page.
 */
import { deriveDesired, productFields, productOf } from '../../src/domain/desired-state.js';

test('productOf and deriveDesired agree on a repeated product id', () => {
  const snap = {
    id: 's',
    title: 'Show',
    scheduledAt: '2026-11-24T18:00:00Z',
    state: 'live',
    products: [
      { id: 'a', title: 'A', price: { amount: 100, currency: 'USD' }, url: 'https://shop.example.com/a' },
      { id: 'b', title: 'B', price: { amount: 150, currency: 'USD' }, url: 'https://shop.example.com/b' },
      { id: 'a', title: 'A2', price: { amount: 200, currency: 'USD' }, url: 'https://shop.example.com/a2' },
    ],
    pinnedProductIds: ['a'],
  };
  const h: Record<string, string> = { snap: JSON.stringify(snap), 'snap@': '0001796196322080|msg_1', v: '1' };
  const desired = deriveDesired('s', h);
  for (const id of ['a', 'b']) {
    const link = productOf(id, productFields(id).map((f) => h[f]));
    expect(link).toEqual(desired?.products.get(id));
  }
  expect(productOf('a', productFields('a').map((f) => h[f]))?.url).toBe('https://shop.example.com/a2');
});

/**
 * What Stryker found untested in src/domain/desired-state.ts (docs/testing.md): the register names and
 * order keys themselves, and deriveDesired over registers that carry their `@` order keys — a pin or a
 * product update older than the snapshot loses to it, newer wins, and only mentioned products are in
 * the pin universe.
 */
import { deriveDesired, orderKey, registerFor } from '../../src/domain/desired-state.js';
import { PartnerEventSchema } from '../../src/domain/events.js';

const show = (occurredAt: string, pinnedProductIds: string[], title = 'T') =>
  PartnerEventSchema.parse({
    type: 'show.updated',
    occurredAt,
    data: { show: { id: 's', title, scheduledAt: '2026-11-24T18:00:00Z', state: 'live', products: [{ id: 'a', title: 'A', price: { amount: 1, currency: 'USD' }, url: 'https://x.example/a' }], pinnedProductIds } },
  });
const pin = (type: 'product.pinned' | 'product.unpinned', productId: string, occurredAt: string) => PartnerEventSchema.parse({ type, occurredAt, data: { showId: 's', productId } });
const productUpdate = (title: string, occurredAt: string) =>
  PartnerEventSchema.parse({ type: 'product.updated', occurredAt, data: { showId: 's', product: { id: 'a', title, price: { amount: 2, currency: 'USD' }, url: 'https://x.example/a2' } } });

/** Registers as the ingest script leaves them: value, `field@` = order key, `v` = changes. */
function registers(events: { id: string; ev: ReturnType<typeof show> }[]): Record<string, string> {
  const h: Record<string, string> = {};
  for (const { id, ev } of events) {
    const { field, value } = registerFor(ev)!.write;
    const key = orderKey(ev.occurredAt, id);
    if (h[`${field}@`] === undefined || h[`${field}@`]! < key) {
      h[field] = value;
      h[`${field}@`] = key;
      h['v'] = String(Number(h['v'] ?? '0') + 1);
    }
  }
  return h;
}

test('register names: a pin event writes pin:<product>, a product update prod:<product>, a snapshot snap', () => {
  expect(registerFor(pin('product.pinned', 'a', '2026-11-24T18:00:00Z'))!.write).toEqual({ field: 'pin:a', value: '1' });
  expect(registerFor(pin('product.unpinned', 'a', '2026-11-24T18:00:00Z'))!.write).toEqual({ field: 'pin:a', value: '0' });
  expect(registerFor(productUpdate('A2', '2026-11-24T18:00:00Z'))!.write.field).toBe('prod:a');
  expect(registerFor(show('2026-11-24T18:00:00Z', []))!.write.field).toBe('snap');
  // Order events are not desired state.
  const order = PartnerEventSchema.parse({ type: 'order.created', occurredAt: '2026-11-24T18:00:00Z', data: { order: { id: 'o', createdAt: '2026-11-24T18:00:00Z', total: { amount: 1, currency: 'USD' } } } });
  expect(registerFor(order)).toBeNull();
});

test('order keys sort by time across digit counts (1999 before 2026), then by webhook id', () => {
  expect(orderKey('1999-12-31T23:59:59Z', 'z')).toBe('000946684799000000000|z');
  // The digits below the millisecond, zero-padded to nanoseconds; an offset does not change them.
  expect(orderKey('1999-12-31T23:59:59.1234567Z', 'z')).toBe('000946684799123456700|z');
  expect(orderKey('2000-01-01T01:59:59.1234567+02:00', 'z')).toBe('000946684799123456700|z');
  expect(orderKey('1999-12-31T23:59:59.123456789123Z', 'z')).toBe('000946684799123456789|z');
  expect(orderKey('1999-12-31T23:59:59Z', 'z') < orderKey('2026-11-24T18:00:00Z', 'a')).toBe(true);
  expect(orderKey('2026-11-24T18:00:00Z', 'a') < orderKey('2026-11-24T18:00:00Z', 'b')).toBe(true);
});

test('order keys before 1970 sort by time too (below the millisecond as well): earlier first, and before every later key', () => {
  const times = ['0000-01-01T00:00:00Z', '1900-01-01T00:00:00Z', '1969-06-01T00:00:00Z', '1969-12-31T23:59:59.998Z', '1969-12-31T23:59:59.999Z', '1969-12-31T23:59:59.9991Z', '1969-12-31T23:59:59.9995Z', '1970-01-01T00:00:00Z', '1970-01-01T00:00:00.0001Z', '1970-01-01T00:00:00.001Z', '2026-11-24T18:00:00Z'];
  const keys = times.map((t) => orderKey(t, 'a'));
  expect([...keys].sort()).toEqual(keys);
  expect(orderKey('1969-12-31T23:59:59.999Z', 'a') < orderKey('1969-12-31T23:59:59.999Z', 'b')).toBe(true);
  expect(orderKey('1970-01-01T00:00:00Z', 'a')).toBe('000000000000000000000|a');
});

test('a pin older than the snapshot loses to the snapshot; a newer one wins', () => {
  const older = deriveDesired('s', registers([
    { id: 'w1', ev: pin('product.pinned', 'a', '2026-11-24T18:00:00Z') },
    { id: 'w2', ev: show('2026-11-24T18:05:00Z', []) },
  ]))!;
  expect([...older.pinned]).toEqual([]);
  const newer = deriveDesired('s', registers([
    { id: 'w1', ev: show('2026-11-24T18:00:00Z', []) },
    { id: 'w2', ev: pin('product.pinned', 'a', '2026-11-24T18:05:00Z') },
  ]))!;
  expect([...newer.pinned]).toEqual(['a']);
  // The pin universe is the products mentioned, nothing else (not register names).
  expect([...newer.pinUniverse]).toEqual(['a']);
  expect([...older.pinUniverse]).toEqual(['a']);
});

test('a product update older than the snapshot loses to it; a newer one wins (registers with their @ keys)', () => {
  const older = deriveDesired('s', registers([
    { id: 'w1', ev: productUpdate('Old update', '2026-11-24T18:00:00Z') },
    { id: 'w2', ev: show('2026-11-24T18:05:00Z', []) },
  ]))!;
  expect(older.products.get('a')?.title).toBe('A');
  expect([...older.products.keys()]).toEqual(['a']);
  const newer = deriveDesired('s', registers([
    { id: 'w1', ev: show('2026-11-24T18:00:00Z', []) },
    { id: 'w2', ev: productUpdate('New update', '2026-11-24T18:05:00Z') },
  ]))!;
  expect(newer.products.get('a')?.title).toBe('New update');
  expect([...newer.products.keys()]).toEqual(['a']);
});

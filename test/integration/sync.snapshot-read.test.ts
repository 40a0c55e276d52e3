/**
 * A sync run's first read parses the show's snapshot once per stored text (ShowRepository
 * desiredFromFlat: every run of a live show reads the same snapshot until the partner sends a new one).
 * A new snapshot is new text: the next read sees it at once; the shared parse is frozen, so no run can
 * change what the next one reads; pins and product updates (registers of their own) are applied over
 * it on every read. Real redis-server, snapshots ingested through the API.
 */
import { createPartner, sampleShow, sendEvent, showEvent, startService, type TestService } from '../helpers/service.js';
import type { DesiredShow } from '../../src/domain/desired-state.js';

let svc: TestService;
let secret: string;
beforeAll(async () => {
  svc = await startService(); // no workers: the test reads as a run does
  secret = await createPartner(svc, 'sn');
}, 60_000);
afterAll(async () => {
  await svc?.close();
});

/** What a run's lease step reads: the desired hash, flat (HGETALL inside Lua). */
const firstRead = async (showId: string): Promise<DesiredShow | null> => {
  const flat = (await svc.rt.redis.call('HGETALL', svc.rt.keys.desired('sn', showId))) as string[];
  return svc.rt.shows.desiredFromFlat(showId, flat);
};
const send = async (event: unknown): Promise<void> => {
  expect((await sendEvent(svc, 'sn', secret, event)).status).toBe(202);
};

test('a new snapshot is read at once; pins and product updates apply over a reused parse; the parse cannot be changed', async () => {
  await send(showEvent('show.scheduled', sampleShow('sn-1'), '2026-11-24T17:00:00Z'));
  const a = (await firstRead('sn-1'))!;
  const b = (await firstRead('sn-1'))!;
  expect(b.products.get('p1')).toBe(a.products.get('p1')); // the same text: one parse, shared
  expect(() => {
    (a.products.get('p1') as { title: string }).title = 'changed by a run';
  }).toThrow(TypeError);
  expect(() => {
    (a.products.get('p1')!.price as { amount: number }).amount = 1;
  }).toThrow(TypeError);
  expect((await firstRead('sn-1'))!.products.get('p1')).toMatchObject({ title: 'Lip Oil', price: { amount: 1800, currency: 'USD' } });

  // A pin and a product update are registers of their own: the snapshot's parse is reused, both are seen.
  await send(showEvent('show.live', sampleShow('sn-1', { state: 'live' }), '2026-11-24T17:01:00Z'));
  const liveA = (await firstRead('sn-1'))!;
  await send({ type: 'product.pinned', occurredAt: '2026-11-24T17:02:00Z', data: { showId: 'sn-1', productId: 'p2' } });
  await send({ type: 'product.updated', occurredAt: '2026-11-24T17:02:30Z', data: { showId: 'sn-1', product: { id: 'p1', title: 'Lip Oil XL', price: { amount: 2100, currency: 'USD' }, url: 'https://shop.example.com/p1' } } });
  const live = (await firstRead('sn-1'))!;
  expect(live.state).toBe('live');
  expect([...live.pinned]).toEqual(['p2']);
  expect(live.products.get('p2')).toBe(liveA.products.get('p2'));
  expect(live.products.get('p1')).toMatchObject({ title: 'Lip Oil XL', price: { amount: 2100 } });
  expect(liveA.products.get('p1')).toMatchObject({ title: 'Lip Oil', price: { amount: 1800 } }); // an earlier read keeps what it read

  // A new snapshot (another price, a product more) is new text: read as it is now.
  const products = [
    { id: 'p1', title: 'Lip Oil', price: { amount: 1500, currency: 'USD' }, url: 'https://shop.example.com/p1' },
    { id: 'p3', title: 'Mascara', price: { amount: 900, currency: 'EUR' }, url: 'https://shop.example.com/p3' },
  ];
  await send(showEvent('show.updated', sampleShow('sn-1', { state: 'live', title: 'Show sn-1, later', products, pinnedProductIds: ['p3'] }), '2026-11-24T17:03:00Z'));
  const later = (await firstRead('sn-1'))!;
  expect(later.title).toBe('Show sn-1, later');
  expect(later.products.get('p1')).toMatchObject({ title: 'Lip Oil', price: { amount: 1500, currency: 'USD' } }); // the newer snapshot wins over the update
  expect(later.products.get('p3')).toMatchObject({ title: 'Mascara' });
  expect(later.products.has('p2')).toBe(false);
  expect([...later.pinned]).toEqual(['p3']); // the newer snapshot decides the pins
});

test('the parses kept for reuse are bounded in characters of text, not only in shows', async () => {
  // 600 shows whose snapshots are each just under the per-text limit: 9,000,000 characters in all,
  // over the memo's 8,000,000 (about 22 MB of heap in parses; 4,096 such texts took ≈ 175 MB).
  const shows = svc.rt.shows as unknown as { snapshots: Map<string, { raw: string }> };
  const text = (i: number): string => JSON.stringify({ ...sampleShow(`big-${i}`), title: `${i} `.padEnd(15_000, 'x') });
  let most = 0;
  for (let i = 0; i < 600; i++) {
    const desired = svc.rt.shows.desiredFromFlat(`big-${i}`, ['snap', text(i), 'snap@', '1']);
    expect(desired!.title.startsWith(`${i} `)).toBe(true);
    let chars = 0;
    for (const { raw } of shows.snapshots.values()) chars += raw.length;
    most = Math.max(most, chars);
  }
  expect(most).toBeGreaterThan(7_000_000); // the memo was used
  expect(most).toBeLessThanOrEqual(8_000_000);
  // The same text again is still one shared parse.
  const again = svc.rt.shows.desiredFromFlat('big-599', ['snap', text(599), 'snap@', '1'])!;
  expect(svc.rt.shows.desiredFromFlat('big-599', ['snap', text(599), 'snap@', '1'])!.products.get('p1')).toBe(again.products.get('p1'));
});

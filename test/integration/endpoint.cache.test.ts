/**
 * OutboundService.emit reads the partner's endpoints through EndpointRepository.listCached (a list at
 * most ENDPOINT_LIST_CACHE_MS old): every change made through the repository is seen by the very next
 * emit of this process — a new endpoint receives it, a disabled, unsubscribed or deleted one does not.
 * Real redis-server.
 */
import { serviceForFile, type TestService } from '../helpers/service.js';

let svc: TestService;
const P = 'epc';

serviceForFile((started) => (svc = started));

const emit = (key: string) => svc.rt.outbound.emit(P, 'attribution.order_attributed', { orderId: key }, key);

test('each endpoint change is seen by the next emit at once', async () => {
  expect(await emit('k0')).toEqual({ messageId: null, duplicate: false, endpointIds: [] });
  // (the empty list is now cached)
  const { endpoint: a } = await svc.rt.outbound.createEndpoint(P, { url: 'http://127.0.0.1:9/a', events: ['attribution.order_attributed'] });
  expect((await emit('k1')).endpointIds).toEqual([a.id]);
  const { endpoint: b } = await svc.rt.outbound.createEndpoint(P, { url: 'http://127.0.0.1:9/b', events: ['mirror.updated'] });
  expect((await emit('k2')).endpointIds).toEqual([a.id]);
  expect(await svc.rt.outbound.endpoints.update(P, b.id, { events: ['mirror.updated', 'attribution.order_attributed'] })).toBe(true);
  expect((await emit('k3')).endpointIds.sort()).toEqual([a.id, b.id].sort());
  expect(await svc.rt.outbound.endpoints.disable(P, a.id, 'test')).toBe(true);
  expect((await emit('k4')).endpointIds).toEqual([b.id]);
  expect(await svc.rt.outbound.endpoints.update(P, a.id, { enabled: true })).toBe(true);
  expect((await emit('k5')).endpointIds.sort()).toEqual([a.id, b.id].sort());
  // the delivery worker's disable (no success since the failure clock started)
  await svc.rt.outbound.endpoints.recordFailure(P, a.id, Date.now() - 10_000);
  expect(await svc.rt.outbound.endpoints.disableIfFailingSince(P, a.id, Date.now() - 5_000, 'failing')).toBe(true);
  expect((await emit('k6')).endpointIds).toEqual([b.id]);
  expect(await svc.rt.outbound.endpoints.delete(P, b.id)).toBe(true);
  expect(await emit('k7')).toEqual({ messageId: null, duplicate: false, endpointIds: [] });
});

test('the cached list is the stored list', async () => {
  const { endpoint } = await svc.rt.outbound.createEndpoint('epc2', { url: 'http://127.0.0.1:9/c', events: ['mirror.updated'] });
  const cached = await svc.rt.outbound.endpoints.listCached('epc2');
  expect(cached).toEqual(await svc.rt.outbound.endpoints.list('epc2'));
  expect(cached.map((e) => e.id)).toEqual([endpoint.id]);
  expect(await svc.rt.outbound.endpoints.listCached('epc2')).toBe(cached); // served from the cache
  expect(await svc.rt.outbound.rotateSecret('epc2', endpoint.id)).toMatchObject({ secret: expect.stringMatching(/^whsec_/) });
  const after = await svc.rt.outbound.endpoints.listCached('epc2');
  expect(after).not.toBe(cached); // the rotation dropped the entry
  expect(after[0]!.secretSealed).not.toBe(cached[0]!.secretSealed);
});

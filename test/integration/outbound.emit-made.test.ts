/**
 * OutboundService.emitMade: the payload and idempotency key of a message are made only when an enabled
 * endpoint subscribes to its type (every sync reports its mirror change; most partners' syncs have
 * nobody to tell, and the key is a SHA-256 over the payload). With a subscriber it is emit(): one
 * message per key. Real redis-server.
 */
import { createPartner, startService, type TestService } from '../helpers/service.js';

let svc: TestService;
beforeAll(async () => {
  svc = await startService();
  await createPartner(svc, 'em1');
  await createPartner(svc, 'em2');
  const r = await svc.api('/v1/partners/em2/endpoints', { json: { url: 'http://127.0.0.1:9/hook', events: ['mirror.updated'], description: 'test' } });
  expect(r.status).toBe(201);
}, 60_000);
afterAll(async () => {
  await svc?.close();
});

test('nobody subscribes: nothing is made, nothing stored', async () => {
  let made = 0;
  const r = await svc.rt.outbound.emitMade('em1', 'mirror.updated', () => {
    made += 1;
    return { data: { x: 1 }, idempotencyKey: 'k1' };
  });
  expect(r).toEqual({ messageId: null, duplicate: false, endpointIds: [] });
  expect(made).toBe(0);
});

test('an endpoint subscribes: the message is made once and stored under its key (a second emit is its duplicate)', async () => {
  let made = 0;
  const make = () => {
    made += 1;
    return { data: { x: 2 }, idempotencyKey: 'k2' };
  };
  const first = await svc.rt.outbound.emitMade('em2', 'mirror.updated', make);
  const again = await svc.rt.outbound.emit('em2', 'mirror.updated', { x: 2 }, 'k2');
  expect(made).toBe(1);
  expect(first.messageId).not.toBeNull();
  expect(first.duplicate).toBe(false);
  expect(again).toMatchObject({ messageId: first.messageId, duplicate: true });
  expect(first.endpointIds).toHaveLength(1);
});

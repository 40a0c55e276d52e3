/**
 * Review 2026-12-02: `POST …/messages/{id}/redeliver` of a delivery still retrying is tried now
 * (contract, README "Outbound webhooks"). The not-due check that keeps a job taken over mid-attempt
 * to its schedule (DeliveryService) deferred the promoted job back to its nextAttemptAt (here 60 s),
 * so the redelivery answered 202 and sent nothing.
 */
import { createServer, type Server } from 'node:http';
import { createPartner, startService, waitFor, type TestService } from '../helpers/service.js';

let svc: TestService;
let server: Server | undefined;
let url = '';
/** What the endpoint answers. */
let status = 500;
afterAll(async () => {
  server?.closeAllConnections();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  await svc?.close();
});

test('redeliver of a delivery waiting for its retry sends it now', async () => {
  svc = await startService({ workers: true, env: { OUTBOUND_RETRY_SCHEDULE_MS: '60000,60000' } });
  const seen: number[] = [];
  const srv = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      seen.push(Date.now());
      res.writeHead(status).end('x');
    });
  });
  server = srv;
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const addr = srv.address();
  url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/h`;
  const p = 'prd';
  await createPartner(svc, p);
  const r = await svc.api(`/v1/partners/${p}/endpoints`, { json: { url, events: ['attribution.order_attributed'] } });
  const ep = ((await r.json()) as { id: string }).id;
  const { messageId } = await svc.rt.outbound.emit(p, 'attribution.order_attributed', { orderId: 'o1' }, 'k1');
  if (!messageId) throw new Error('no message stored');
  await waitFor(async () => seen.length === 1, 10_000, 20);
  // The failed attempt's result is saved (retry due in 60 s) before the operator redelivers.
  await waitFor(async () => (await svc.rt.outbound.message(p, messageId))?.deliveries.some((d) => d.nextAttemptAt !== null) === true, 10_000, 20);
  status = 200;
  const rd = await svc.api(`/v1/partners/${p}/messages/${messageId}/redeliver`, { json: { endpointId: ep } });
  expect(rd.status).toBe(202);
  await waitFor(async () => (await svc.rt.outbound.message(p, messageId))?.deliveries.some((d) => d.state === 'delivered') === true, 15_000, 50);
  expect(seen).toHaveLength(2);
}, 60_000);

test('a redelivery keeps the message for the whole retention again, counted from the redelivery', async () => {
  status = 200;
  const p = 'prk';
  await createPartner(svc, p);
  const r = await svc.api(`/v1/partners/${p}/endpoints`, { json: { url, events: ['attribution.order_attributed'] } });
  expect(r.status).toBe(201);
  const { messageId } = await svc.rt.outbound.emit(p, 'attribution.order_attributed', { orderId: 'o2' }, 'k2');
  if (!messageId) throw new Error('no message stored');
  const delivered = async (run: number): Promise<boolean> => (await svc.rt.outbound.message(p, messageId))?.deliveries.some((d) => d.state === 'delivered' && d.run === run) === true;
  await waitFor(() => delivered(1), 15_000, 50);
  // Its retention nearly over (a minute left): an operator redelivers it.
  const key = svc.rt.keys.outboundMessage(p, messageId);
  await svc.rt.redis.expire(key, 60);
  const rd = await svc.api(`/v1/partners/${p}/messages/${messageId}/redeliver`, { json: {} });
  expect(rd.status).toBe(202);
  await waitFor(() => delivered(2), 15_000, 50);
  const retentionSec = svc.config.inboxTtlDays * 86_400;
  expect(await svc.rt.redis.ttl(key)).toBeGreaterThan(retentionSec - 600);
}, 60_000);

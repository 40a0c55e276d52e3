/**
 * An endpoint deleted while an attempt to it is in flight leaves nothing behind: the attempt's outcome is
 * not written to an attempt log of its own. DELETE removes the endpoint and its attempt log, and the
 * attempt that answered afterwards appended to the log (XADD makes the stream), so every such delete left
 * a key without a TTL that nothing reads or removes: an attempt log of an endpoint that no longer
 * exists, for ever, one per delete that met an attempt (and more for one whose endpoint hangs). Every
 * other write of an attempt's outcome (the failure clock, the success time, the delivery's state) checks
 * that its record still exists. Real HTTP on loopback, real Redis.
 */
import { createServer, type ServerResponse, type Server } from 'node:http';
import { createPartner, startService, waitFor, type TestService } from '../helpers/service.js';

let svc: TestService;
let server: Server | undefined;
afterAll(async () => {
  server?.closeAllConnections();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  await svc?.close();
});

test.each([200, 500])('an attempt that answers %i after its endpoint was deleted writes no attempt log', async (status) => {
  svc ??= await startService({ workers: true, env: { OUTBOUND_RETRY_SCHEDULE_MS: '60000', OUTBOUND_TIMEOUT_MS: '8000' } });
  const held: ServerResponse[] = [];
  const srv = createServer((req, res) => {
    req.resume();
    req.on('end', () => held.push(res));
  });
  server?.closeAllConnections();
  server?.close();
  server = srv;
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const addr = srv.address();
  const url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/h`;
  const p = `del${status}`;
  await createPartner(svc, p);
  const r = await svc.api(`/v1/partners/${p}/endpoints`, { json: { url, events: ['attribution.order_attributed'] } });
  const ep = ((await r.json()) as { id: string }).id;
  const { messageId } = await svc.rt.outbound.emit(p, 'attribution.order_attributed', { orderId: 'o1' }, 'k1');
  if (!messageId) throw new Error('no message stored');
  await waitFor(async () => held.length === 1, 10_000, 20);
  expect((await svc.api(`/v1/partners/${p}/endpoints/${ep}`, { method: 'DELETE' })).status).toBe(204);
  held[0]!.writeHead(status).end('x');
  // The attempt's outcome is saved in the delivery's state (the message still exists).
  await waitFor(async () => ((await svc.rt.outbound.message(p, messageId))?.deliveries[0]?.attempts ?? 0) === 1, 10_000, 20);
  const attemptsKey = svc.rt.keys.endpointAttempts(p, ep);
  expect(await svc.rt.redis.exists(attemptsKey, svc.rt.keys.endpoint(p, ep))).toBe(0);
}, 60_000);

/**
 * One partner's slow endpoints do not hold every other partner's webhooks back. Deliveries shared one
 * FIFO queue and OUTBOUND_CONCURRENCY slots per process: a partner whose endpoints take the whole
 * OUTBOUND_TIMEOUT_MS (a tarpit: accepts the connection, never answers) and who has enough messages
 * queued took every slot, and another partner's message waited for all of them (found against
 * `npm start`: 20 tarpit endpoints of one partner delayed another partner's first mirror.updated by more
 * than 90 s). A partner now holds at most a fifth of the slots; its other deliveries wait (not counted as
 * attempts) while the rest of the queue moves. Real Redis, real worker, real HTTP receivers on loopback.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import { createPartner, startService, waitFor, type TestService } from '../helpers/service.js';

let svc: TestService;
const servers: Server[] = [];
const held: ServerResponse[] = [];

async function receiver(answer: boolean): Promise<{ url: string; hits: () => number }> {
  let hits = 0;
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      hits += 1;
      if (answer) res.end('ok');
      else held.push(res); // a tarpit: never answers
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  const addr = server.address();
  return { url: `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/hooks`, hits: () => hits };
}

beforeAll(async () => {
  svc = await startService({ workers: true, env: { OUTBOUND_CONCURRENCY: '5', OUTBOUND_TIMEOUT_MS: '3000', OUTBOUND_RETRY_SCHEDULE_MS: '60000,60000' } });
});
afterAll(async () => {
  for (const s of servers) s.closeAllConnections();
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  await svc?.close();
});

const addEndpoint = async (partnerId: string, url: string): Promise<void> => {
  const r = await svc.api(`/v1/partners/${partnerId}/endpoints`, { json: { url, events: ['attribution.order_attributed'] } });
  expect(r.status).toBe(201);
};

test("a partner's tarpit endpoints take at most a fifth of the delivery slots: another partner's webhook goes out at once", async () => {
  await createPartner(svc, 'hostile');
  await createPartner(svc, 'victim');
  const tarpit = await receiver(false);
  const ok = await receiver(true);
  for (let i = 0; i < 4; i++) await addEndpoint('hostile', `${tarpit.url}/${i}`);
  await addEndpoint('victim', ok.url);
  for (let i = 0; i < 10; i++) await svc.rt.outbound.emit('hostile', 'attribution.order_attributed', { orderId: `h${i}` }, `h-${i}`);
  await waitFor(async () => tarpit.hits() >= 1, 10_000);
  const started = Date.now();
  await svc.rt.outbound.emit('victim', 'attribution.order_attributed', { orderId: 'v1' }, 'v-1');
  await waitFor(async () => ok.hits() >= 1, 30_000, 20);
  // Before: 40 tarpit deliveries ahead of it, 5 at a time, 3 s each: about 24 s.
  expect(Date.now() - started).toBeLessThan(2_500);
  // The hostile partner still gets its deliveries tried, one slot's worth at a time.
  expect(tarpit.hits()).toBeLessThanOrEqual(2);
}, 60_000);

/**
 * An endpoint that answers a delivery with `101 Switching Protocols` and an `Upgrade` header (a
 * WebSocket server, a hostile partner): Node's HTTP client closes such a request itself when nobody
 * listens for 'upgrade', with neither a response nor an error. The attempt's only other way out, its
 * deadline, was cleared on that close, so the attempt never ended: the delivery stayed `pending` with
 * no attempt recorded, never retried, and its worker slot stayed taken until the process restarted
 * (a partner with a few such endpoints could hold every slot). Now the 101 is the attempt's answer:
 * not a 2xx, so retried per the schedule like any other. Real TCP on loopback, real Redis.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { createPartner, startService, waitFor, type TestService } from '../helpers/service.js';

let svc: TestService;
const servers: Server[] = [];
const sockets = new Set<Socket>();
afterAll(async () => {
  for (const s of sockets) s.destroy();
  for (const s of servers) await new Promise<void>((r) => s.close(() => r()));
  await svc?.close();
});
beforeAll(async () => {
  svc = await startService({ workers: true, env: { OUTBOUND_RETRY_SCHEDULE_MS: '60000', OUTBOUND_TIMEOUT_MS: '3000' } });
});

/** A receiver that answers every request with `answer` (raw bytes) and keeps the connection open. */
async function rawReceiver(answer: string): Promise<string> {
  const srv = createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.once('data', () => s.write(answer));
  });
  servers.push(srv);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const addr = srv.address();
  return `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/h`;
}

test('an endpoint answering 101 with an Upgrade: the attempt ends as a failed one (HTTP 101) and is retried, its slot freed', async () => {
  const p = 'upg';
  await createPartner(svc, p);
  const url = await rawReceiver('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
  const r = await svc.api(`/v1/partners/${p}/endpoints`, { json: { url, events: ['attribution.order_attributed'] } });
  expect(r.status).toBe(201);
  const { messageId } = await svc.rt.outbound.emit(p, 'attribution.order_attributed', { orderId: 'o1' }, 'k-101');
  if (!messageId) throw new Error('no message stored');
  // Well within the attempt's deadline (3 s): the answer ends it.
  const d = await waitFor(async () => {
    const m = await svc.rt.outbound.message(p, messageId);
    const one = m?.deliveries[0];
    return one && one.attempts === 1 ? one : undefined;
  }, 10_000);
  expect(d).toMatchObject({ state: 'pending', lastStatusCode: 101, lastError: 'HTTP 101' });
  expect(d.nextAttemptAt).not.toBeNull();
}, 40_000);

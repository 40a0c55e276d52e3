/**
 * A message outlives its delivery's next attempt. Messages were kept INBOX_TTL_DAYS from the emit, and
 * nothing made that cover the retries: with INBOX_TTL_DAYS=1 (allowed) the default schedule's last
 * attempts come 17.6 h and 27.6 h after the first one, and one Retry-After of a day (honoured, up to
 * 24 h) pushes any retry past it. The job then found the message gone and ended as `skipped`: the
 * delivery was lost without a trace (its state went with the message, nothing failed, no dead letter
 * for ops), and an endpoint that failed everything was never disabled, its deliveries never reaching
 * the end of their schedule (contract §8). Real HTTP on loopback, real Redis: the message key's TTL is
 * read after a failed attempt has scheduled its retry.
 */
import { createServer, type Server } from 'node:http';
import { createPartner, startService, waitFor, type TestService } from '../helpers/service.js';

const DAY_MS = 86_400_000;
const services: TestService[] = [];
const servers: Server[] = [];
afterAll(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
  for (const s of services) await s.close();
});

/** An endpoint on loopback that answers every delivery `status` with `headers`. */
async function endpoint(status: number, headers: Record<string, string> = {}): Promise<string> {
  const srv = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(status, headers).end(status === 204 ? undefined : 'busy'));
  });
  servers.push(srv);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const addr = srv.address();
  return `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/h`;
}

/**
 * Partner `p` with one endpoint answering 503 (with `headers`), one message emitted to it: its id and
 * the first delivery once the failed attempt scheduled its retry (and how far ahead that retry is).
 */
async function failedOnce(svc: TestService, p: string, headers: Record<string, string>) {
  await createPartner(svc, p);
  const r = await svc.api(`/v1/partners/${p}/endpoints`, { json: { url: await endpoint(503, headers), events: ['attribution.order_attributed'] } });
  expect(r.status).toBe(201);
  const { messageId } = await svc.rt.outbound.emit(p, 'attribution.order_attributed', { orderId: 'o1' }, 'k1');
  if (!messageId) throw new Error('no message stored');
  const d = await waitFor(async () => {
    const one = (await svc.rt.outbound.message(p, messageId))?.deliveries[0];
    return one?.nextAttemptAt ? one : undefined;
  }, 15_000);
  return { messageId, d, nextInMs: Date.parse(d.nextAttemptAt!) - Date.now() };
}

test.each([
  ['an answer with Retry-After: 86400 (default schedule)', {}, { 'retry-after': '86400' }],
  ['a schedule whose retry comes after a day (30 h ± 10 % jitter)', { OUTBOUND_RETRY_SCHEDULE_MS: String(30 * 3_600_000) }, {}],
])('INBOX_TTL_DAYS=1, %s: the message is kept past the next attempt, and a day after it', async (_name, env: Record<string, string>, headers: Record<string, string>) => {
  const svc = await startService({ workers: true, env: { INBOX_TTL_DAYS: '1', ...env } });
  services.push(svc);
  const p = 'ret';
  const { messageId, d, nextInMs } = await failedOnce(svc, p, headers);
  expect(d).toMatchObject({ state: 'pending', attempts: 1, lastStatusCode: 503 });
  expect(nextInMs).toBeGreaterThan(DAY_MS - 60_000);
  const ttlMs = await svc.rt.redis.pttl(svc.rt.keys.outboundMessage(p, messageId));
  // Kept until the retry, and INBOX_TTL_DAYS after it (so that a delivery that fails for good is there to see and redeliver).
  expect(ttlMs).toBeGreaterThan(nextInMs + DAY_MS - 60_000);
}, 60_000);

/**
 * A redelivery keeps the message for another retention period and never less than it had: it set the
 * TTL with a plain EXPIRE, so an operator who redelivered a message to endpoint B (its retention reset
 * to INBOX_TTL_DAYS) cut the extension endpoint A's retry had given it, and A's retry found the message
 * gone and ended `skipped`.
 */
test('INBOX_TTL_DAYS=1: redelivering to another endpoint keeps the message past a retry that was scheduled for after a day', async () => {
  const svc = await startService({ workers: true, env: { INBOX_TTL_DAYS: '1', OUTBOUND_RETRY_SCHEDULE_MS: String(30 * 3_600_000) } });
  services.push(svc);
  const p = 'red';
  const { messageId, nextInMs } = await failedOnce(svc, p, {});
  expect(nextInMs).toBeGreaterThan(DAY_MS - 60_000);

  // Endpoint B (answers 2xx: its own attempt extends nothing) subscribes later; the operator redelivers to it.
  const b = await svc.api(`/v1/partners/${p}/endpoints`, { json: { url: await endpoint(204), events: ['attribution.order_attributed'] } });
  expect(b.status).toBe(201);
  const bId = ((await b.json()) as { id: string }).id;
  expect(await svc.rt.outbound.redeliver(p, messageId, bId)).toEqual([bId]);
  const ttlMs = await svc.rt.redis.pttl(svc.rt.keys.outboundMessage(p, messageId));
  expect(ttlMs).toBeGreaterThan(nextInMs + DAY_MS - 60_000);
  await waitFor(async () => ((await svc.rt.outbound.message(p, messageId))?.deliveries.find((x) => x.endpointId === bId)?.state === 'delivered' ? true : undefined), 15_000);
  expect(await svc.rt.redis.pttl(svc.rt.keys.outboundMessage(p, messageId))).toBeGreaterThan(nextInMs + DAY_MS - 60_000);
}, 60_000);

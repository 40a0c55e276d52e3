/**
 * An endpoint's answer body is not ours to read: an attempt takes the status (and Retry-After, Location)
 * and then reads at most a little of the body before it closes the connection. It used to drain the
 * body until the attempt's deadline: an endpoint that answers 200 (or 503) and then streams bytes without
 * end kept the worker reading at full speed for OUTBOUND_TIMEOUT_MS after every attempt, its slot
 * already free (the fairness rules count attempts until their status), so a few such messages spent the
 * worker process's CPU and bandwidth that every partner's deliveries share. Real HTTP on loopback, real Redis.
 */
import { createServer, type Server } from 'node:http';
import { createPartner, startService, waitFor, type TestService } from '../helpers/service.js';

let svc: TestService;
const servers: Server[] = [];
afterAll(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
  await svc?.close();
});
beforeAll(async () => {
  svc = await startService({ workers: true, env: { OUTBOUND_RETRY_SCHEDULE_MS: '60000', OUTBOUND_TIMEOUT_MS: '4000' } });
});

/** A receiver that answers `status` and then writes a body without end until its connection closes. */
async function endlessBody(status: number): Promise<{ url: string; closed: Promise<number> }> {
  let done: (bytes: number) => void = () => undefined;
  const closed = new Promise<number>((r) => (done = r));
  const chunk = Buffer.alloc(64 * 1024, 120);
  const srv = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      let flushed = 0;
      let open = true;
      res.on('close', () => {
        open = false;
        done(flushed);
      });
      res.on('error', () => undefined);
      res.writeHead(status, { 'content-type': 'text/plain' });
      const pump = (): void => {
        while (open) {
          const more = res.write(chunk, (err) => {
            if (!err) flushed += chunk.length;
          });
          if (!more) {
            res.once('drain', pump);
            return;
          }
        }
      };
      pump();
    });
  });
  servers.push(srv);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const addr = srv.address();
  return { url: `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/h`, closed };
}

/** Far more than the kernel's socket buffers on loopback hold, far less than seconds of reading at full speed. */
const MAX_BYTES_READ = 48 * 1024 * 1024;

test.each([
  [200, 'delivered'],
  [503, 'pending'],
])('an endpoint answering %i with an endless body: the status counts, and the connection is closed after a little of the body', async (status, state) => {
  const p = `rb${status}`;
  await createPartner(svc, p);
  const rcv = await endlessBody(status);
  const r = await svc.api(`/v1/partners/${p}/endpoints`, { json: { url: rcv.url, events: ['attribution.order_attributed'] } });
  expect(r.status).toBe(201);
  const { messageId } = await svc.rt.outbound.emit(p, 'attribution.order_attributed', { orderId: 'o1' }, `k-${status}`);
  if (!messageId) throw new Error('no message stored');
  const d = await waitFor(async () => {
    const m = await svc.rt.outbound.message(p, messageId);
    const one = m?.deliveries[0];
    return one && one.attempts === 1 ? one : undefined;
  }, 15_000);
  expect(d).toMatchObject({ state, lastStatusCode: status });
  const bytes = await rcv.closed;
  expect(bytes).toBeLessThan(MAX_BYTES_READ);
}, 60_000);

/**
 * An attempt's deadline (OUTBOUND_TIMEOUT_MS) covers the destination check's DNS lookup too. Every
 * attempt checks the endpoint's host again before it sends (assertPublicDestination: DNS answers
 * change), and that lookup had no deadline: only the send's own connect-time lookup had one. A partner
 * whose DNS does not answer (its name server drops queries) held the attempt for as long as the
 * resolver kept trying — here, a lookup that never answers, for ever: no retry, no failure, the job's
 * lock renewed while the delivery slot stayed taken. It is now a failed attempt ("timed out"), retried on
 * the schedule like any other. The system resolver is swapped for one that answers as told (hostLookup,
 * src/lib/ssrf.ts); private destinations are not allowed here, as in production, and nothing is sent.
 */
import { hostLookup } from '../../src/lib/ssrf.js';
import { createPartner, startService, waitFor, type TestService } from '../helpers/service.js';

let svc: TestService;
const system = hostLookup.lookup;
let hang = false;
/** The lookups left hanging: failed (EAI_AGAIN) at the end, so that a worker still waiting for one can close. */
const hanging: ((err: Error) => void)[] = [];

beforeAll(async () => {
  hostLookup.lookup = (host) => {
    if (host !== 'hooks.slow-dns.example') return system(host);
    return hang ? new Promise<never>((_, reject) => hanging.push(reject)) : Promise.resolve([{ address: '93.184.215.14' }]);
  };
  svc = await startService({ workers: true, env: { ALLOW_PRIVATE_DESTINATIONS: 'false', OUTBOUND_TIMEOUT_MS: '1000', OUTBOUND_RETRY_SCHEDULE_MS: '600000' } });
  await createPartner(svc, 'sdns');
});
afterAll(async () => {
  hostLookup.lookup = system;
  for (const reject of hanging) reject(Object.assign(new Error('getaddrinfo EAI_AGAIN hooks.slow-dns.example'), { code: 'EAI_AGAIN' }));
  await svc?.close();
});

test('a destination check whose DNS lookup does not answer ends the attempt at its deadline: a failed attempt, retried', async () => {
  const r = await svc.api('/v1/partners/sdns/endpoints', { json: { url: 'https://hooks.slow-dns.example/h', events: ['attribution.order_attributed'] } });
  expect(r.status).toBe(201);
  const ep = ((await r.json()) as { id: string }).id;
  hang = true;
  const { messageId } = await svc.rt.outbound.emit('sdns', 'attribution.order_attributed', { orderId: 'o1' }, 'k1');
  if (!messageId) throw new Error('no message stored');
  const d = await waitFor(async () => {
    const one = (await svc.rt.outbound.message('sdns', messageId))?.deliveries[0];
    return one && one.attempts === 1 ? one : undefined;
  }, 15_000);
  expect(d).toMatchObject({ state: 'pending', lastStatusCode: null });
  expect(d.lastError).toMatch(/timed out after 1000 ms/);
  expect(d.lastError).toContain('hooks.slow-dns.example');
  expect(d.nextAttemptAt).not.toBeNull();
  const attempts = (await (await svc.api(`/v1/partners/sdns/endpoints/${ep}/attempts`)).json()) as { attempts: { success: boolean; error: string }[] };
  expect(attempts.attempts).toHaveLength(1);
  expect(attempts.attempts[0]).toMatchObject({ success: false });
}, 60_000);

/**
 * INGEST_SYNC_JOBS (src/queues/inline-sync.ts), the service as started with its default (`inline`),
 * no dispatcher running: on one Redis an accepted show event's sync jobs (one per enabled target, the
 * first request's id in their data) exist when the 202 is answered, with no sync-dispatch entry; a burst
 * for one show is one job per target (BullMQ's deduplication, as the dispatcher's coalescing gave);
 * concurrent events for many shows each get theirs; entries already in the stream (an older process's,
 * or INGEST_SYNC_JOBS=dispatch before a change) are still dispatched by the dispatcher, which runs in
 * either mode. On a Redis Cluster (`npm run test:cluster`) the same default writes the dispatch entry.
 * The jobs' Redis structures themselves: test/integration/inline-sync.conformance.test.ts.
 */
import { randomBytes } from 'node:crypto';
import { startRoles, type Started } from '../../src/main/process.js';
import { shardOf, syncJobId, type SyncJob } from '../../src/queues/queues.js';
import { testTopology } from '../helpers/redis-cluster.js';
import { createPartner, sendEvent, startService, waitFor, type TestService } from '../helpers/service.js';

const single = testTopology() === 'single' ? test : test.skip;
const cluster = testTopology() === 'single' ? test.skip : test;
const P = 'inl';
const TARGETS = ['inl-yt', 'inl-yt2'];
let svc: TestService;
let secret: string;
const dispatchers: Started[] = [];

beforeAll(async () => {
  svc = await startService({ dispatch: false, env: { SECRETS_KEY: randomBytes(32).toString('base64') } });
  secret = await createPartner(svc, P);
  for (const id of TARGETS) {
    const t = await svc.api(`/v1/partners/${P}/targets?verify=false`, { json: { id, platform: 'youtube', name: id, credentials: { refreshToken: 'r' }, commissionRateBps: 500 } });
    expect(t.status).toBe(201);
  }
  const off = await svc.api(`/v1/partners/${P}/targets?verify=false`, { json: { id: 'inl-off', platform: 'youtube', name: 'off', credentials: { refreshToken: 'r' }, commissionRateBps: 500, enabled: false } });
  expect(off.status).toBe(201);
}, 60_000);
afterAll(async () => {
  for (const d of dispatchers) await d.stop();
  await svc?.close();
});

const pin = (showId: string, productId = 'p1') => ({ type: 'product.pinned', occurredAt: new Date().toISOString(), data: { showId, productId } });
const streamLength = (): Promise<number> => svc.rt.redis.xlen(svc.rt.keys.syncDispatch());

async function jobOf(showId: string, targetId: string): Promise<{ id: string; data: SyncJob } | null> {
  const q = svc.rt.syncProducer.queue('youtube', shardOf(P, showId, svc.config.syncShards));
  const id = await q.getDeduplicationJobId(syncJobId({ partnerId: P, showId, targetId }));
  if (!id) return null;
  const job = await q.getJob(id);
  return job ? { id, data: job.data as SyncJob } : null;
}

async function waitingJobs(): Promise<number> {
  let n = 0;
  for (const q of svc.rt.syncProducer.allQueues()) n += (await q.getJobCounts('wait')).wait ?? 0;
  return n;
}

single('an accepted show event on one Redis has its sync jobs (enabled targets only) when the 202 is answered, and no dispatch entry', async () => {
  const before = await streamLength();
  const r = await sendEvent(svc, P, secret, pin('one'));
  expect(r.status).toBe(202);
  const requestId = r.headers.get('x-request-id');
  for (const t of TARGETS) expect(await jobOf('one', t)).toEqual({ id: expect.any(String), data: { partnerId: P, showId: 'one', targetId: t, requestId } });
  expect(await jobOf('one', 'inl-off')).toBeNull();
  expect(await streamLength()).toBe(before);
});

single('a burst of events for one show is one job per target; a stored duplicate adds nothing new', async () => {
  const w0 = await waitingJobs();
  for (let i = 0; i < 12; i++) expect((await sendEvent(svc, P, secret, pin('burst', `p${i}`), { webhookId: `msg_burst_${i}` })).status).toBe(202);
  expect((await sendEvent(svc, P, secret, pin('burst', 'p0'), { webhookId: 'msg_burst_0' })).status).toBe(200);
  expect(await waitingJobs()).toBe(w0 + TARGETS.length);
  const first = await jobOf('burst', TARGETS[0]!);
  expect(first).not.toBeNull();
});

single('concurrent events for many shows each get their jobs', async () => {
  const shows = Array.from({ length: 60 }, (_, i) => `many${i}`);
  const res = await Promise.all(shows.map((s) => sendEvent(svc, P, secret, pin(s))));
  expect(res.map((r) => r.status)).toEqual(shows.map(() => 202));
  for (const s of shows) for (const t of TARGETS) expect(await jobOf(s, t)).not.toBeNull();
});

single('entries already in the dispatch stream are still turned into jobs by the dispatcher in inline mode', async () => {
  await svc.rt.redis.xadd(svc.rt.keys.syncDispatch(), '*', 'p', P, 's', 'old-entry', 'r', 'req_old');
  expect(await jobOf('old-entry', TARGETS[0]!)).toBeNull();
  dispatchers.push(await startRoles(['dispatch'], svc.config, { logger: false }));
  await waitFor(async () => (await jobOf('old-entry', TARGETS[0]!)) && (await jobOf('old-entry', TARGETS[1]!)));
  await waitFor(async () => (await streamLength()) === 0);
  expect((await jobOf('old-entry', TARGETS[0]!))!.data.requestId).toBe('req_old');
});

cluster('on a Redis Cluster the default (inline) is not used: the event writes its dispatch entry', async () => {
  const before = await streamLength();
  expect((await sendEvent(svc, P, secret, pin('on-cluster'))).status).toBe(202);
  expect(await streamLength()).toBe(before + 1);
});

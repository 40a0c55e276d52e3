/**
 * The sync dispatcher (src/mirror/sync.dispatcher.ts): an accepted show event leaves a dispatch entry
 * (written with the event; on one Redis with INGEST_SYNC_JOBS=dispatch, as here: the default `inline`
 * makes the jobs in the ingest script, test/integration/ingest.inline-sync.test.ts), and only a
 * dispatcher turns entries into sync jobs. Here:
 * - entries wait durably while no dispatcher runs, and many events for one show become one job;
 * - a dispatcher SIGKILLed while it holds entries it read but did not turn into jobs loses nothing:
 *   another dispatcher takes them over after DISPATCH_RECLAIM_MS and the jobs exist;
 * - a batch whose job adds failed is read again by its own dispatcher at once (not left pending
 *   until DISPATCH_RECLAIM_MS lets a takeover have it);
 * - the same on a Redis Cluster (`npm run test:cluster` runs this file too).
 * Real Redis, real BullMQ, a real child process for the kill.
 */
import { randomBytes } from 'node:crypto';
import { startRoles, type Started } from '../../src/main/process.js';
import { shardOf, syncJobId } from '../../src/queues/queues.js';
import pino from 'pino';
import { DISPATCH_GROUP, SyncDispatcher } from '../../src/mirror/sync.dispatcher.js';
import { createRedis } from '../../src/store/redis.js';
import { createPartner, sampleShow, sendEvent, showEvent, startService, waitFor, type TestService } from '../helpers/service.js';
import { spawnWorker, type WorkerProcess } from '../helpers/worker-process.js';

const P = 'dsp';
const TARGETS = ['dsp-yt', 'dsp-yt2'];
let svc: TestService;
let secret: string;
const children: WorkerProcess[] = [];
const dispatchers: Started[] = [];

beforeAll(async () => {
  // No dispatcher in the service itself: each test starts the one it needs.
  svc = await startService({ dispatch: false, env: { INGEST_SYNC_JOBS: 'dispatch', DISPATCH_RECLAIM_MS: '500', SECRETS_KEY: randomBytes(32).toString('base64') } });
  secret = await createPartner(svc, P);
  for (const id of TARGETS) {
    const t = await svc.api(`/v1/partners/${P}/targets?verify=false`, { json: { id, platform: 'youtube', name: id, credentials: { refreshToken: 'r' }, commissionRateBps: 500 } });
    expect(t.status).toBe(201);
  }
}, 60_000);
afterAll(async () => {
  for (const c of children) await c.kill();
  for (const d of dispatchers) await d.stop();
  await svc?.close();
});

async function startDispatcher(): Promise<Started> {
  const d = await startRoles(['dispatch'], svc.config, { logger: false });
  dispatchers.push(d);
  return d;
}

async function jobIdOf(showId: string, targetId: string): Promise<string | null> {
  const q = svc.rt.syncProducer.queue('youtube', shardOf(P, showId, svc.config.syncShards));
  return (await q.getDeduplicationJobId(syncJobId({ partnerId: P, showId, targetId }))) ?? null;
}

async function waitingJobs(): Promise<number> {
  let n = 0;
  for (const q of svc.rt.syncProducer.allQueues()) n += (await q.getJobCounts('wait')).wait ?? 0;
  return n;
}

const streamLength = (): Promise<number> => svc.rt.redis.xlen(svc.rt.keys.syncDispatch());

async function pin(showId: string, productId: string, webhookId: string): Promise<void> {
  const r = await sendEvent(svc, P, secret, { type: 'product.pinned', occurredAt: new Date().toISOString(), data: { showId, productId } }, { webhookId });
  expect(r.status).toBe(202);
}

test('entries wait for a dispatcher; a burst of events for one show becomes one job per target', async () => {
  expect((await sendEvent(svc, P, secret, showEvent('show.scheduled', sampleShow('burst'), '2026-11-24T17:00:00Z'))).status).toBe(202);
  for (let i = 0; i < 20; i++) await pin('burst', `p${i}`, `msg_burst_${i}`);
  await pin('other', 'p1', 'msg_other_1');
  // A repeated webhook-id marks again (its first delivery's entry may be gone): harmless, coalesced.
  const dup = await sendEvent(svc, P, secret, { type: 'product.pinned', occurredAt: new Date().toISOString(), data: { showId: 'burst', productId: 'p0' } }, { webhookId: 'msg_burst_0' });
  expect(dup.status).toBe(200);

  // Stored and marked, but no dispatcher: no job yet, every entry still there.
  expect(await streamLength()).toBe(23);
  expect(await waitingJobs()).toBe(0);

  await startDispatcher();
  await waitFor(async () => (await streamLength()) === 0, 20_000);
  for (const show of ['burst', 'other']) for (const t of TARGETS) expect(await jobIdOf(show, t)).toBeTruthy();
  // 2 shows × 2 targets, however many events.
  expect(await waitingJobs()).toBe(4);
  const q = svc.rt.syncProducer.queue('youtube', shardOf(P, 'burst', svc.config.syncShards));
  const job = await q.getJob((await jobIdOf('burst', TARGETS[0]!))!);
  expect(job?.data).toMatchObject({ partnerId: P, showId: 'burst', targetId: TARGETS[0], requestId: expect.stringMatching(/^\S+$/) });

  // Later events for a show whose job still waits are coalesced into it too.
  await pin('burst', 'p99', 'msg_burst_99');
  await waitFor(async () => (await streamLength()) === 0, 20_000);
  expect(await waitingJobs()).toBe(4);
  await Promise.all(dispatchers.splice(0).map((d) => d.stop()));
}, 120_000);

test('SIGKILL of a dispatcher holding unacknowledged entries: another one takes them over, every job exists', async () => {
  for (const q of svc.rt.syncProducer.allQueues()) await q.obliterate({ force: true });
  const shows = Array.from({ length: 6 }, (_, i) => `k${i}`);
  for (const [i, s] of shows.entries()) await pin(s, 'p1', `msg_kill_${i}`);
  expect(await streamLength()).toBe(shows.length);

  const stuck = spawnWorker({ ...svc.redis.env, KEY_PREFIX: svc.config.keyPrefix, DISPATCH_RECLAIM_MS: '500', LOG_LEVEL: 'silent' }, 'test/helpers/dispatch-stuck.ts');
  children.push(stuck);
  // It has read every entry and waits for its job adds: kill it there.
  await waitFor(async () => /read \d+/.test(stuck.output()), 30_000);
  await stuck.kill('SIGKILL');
  const pending = (await svc.rt.redis.xpending(svc.rt.keys.syncDispatch(), DISPATCH_GROUP)) as [number, ...unknown[]];
  expect(pending[0]).toBe(shows.length);
  expect(await waitingJobs()).toBe(0);
  expect(await streamLength()).toBe(shows.length);

  await startDispatcher();
  await waitFor(async () => (await streamLength()) === 0, 30_000);
  for (const s of shows) for (const t of TARGETS) expect(await jobIdOf(s, t)).toBeTruthy();
  expect(await waitingJobs()).toBe(shows.length * TARGETS.length);
  const after = (await svc.rt.redis.xpending(svc.rt.keys.syncDispatch(), DISPATCH_GROUP)) as [number, ...unknown[]];
  expect(after[0]).toBe(0);
}, 120_000);

test('two partners with the same show id in one batch: each partner gets its own jobs (coalesced per partner and show, not per show id)', async () => {
  await Promise.all(dispatchers.splice(0).map((d) => d.stop()));
  for (const q of svc.rt.syncProducer.allQueues()) await q.obliterate({ force: true });
  const Q = 'dsq';
  const qSecret = await createPartner(svc, Q);
  expect((await svc.api(`/v1/partners/${Q}/targets?verify=false`, { json: { id: 'dsq-yt', platform: 'youtube', name: 'dsq-yt', credentials: { refreshToken: 'r' }, commissionRateBps: 500 } })).status).toBe(201);
  await pin('twin', 'p1', 'msg_twin_p');
  const r = await sendEvent(svc, Q, qSecret, { type: 'product.pinned', occurredAt: new Date().toISOString(), data: { showId: 'twin', productId: 'p1' } }, { webhookId: 'msg_twin_q' });
  expect(r.status).toBe(202);
  expect(await streamLength()).toBe(2);

  // One dispatcher reads both entries in one batch.
  await startDispatcher();
  await waitFor(async () => (await streamLength()) === 0, 20_000);
  const jobOf = async (partnerId: string, targetId: string): Promise<string | null> => {
    const q = svc.rt.syncProducer.queue('youtube', shardOf(partnerId, 'twin', svc.config.syncShards));
    return (await q.getDeduplicationJobId(syncJobId({ partnerId, showId: 'twin', targetId }))) ?? null;
  };
  for (const t of TARGETS) expect(await jobOf(P, t)).toBeTruthy();
  expect(await jobOf(Q, 'dsq-yt')).toBeTruthy();
  expect(await waitingJobs()).toBe(TARGETS.length + 1);
}, 120_000);

test('a batch whose job adds failed is read again at once, not left for DISPATCH_RECLAIM_MS to take over', async () => {
  await Promise.all(dispatchers.splice(0).map((d) => d.stop()));
  for (const q of svc.rt.syncProducer.allQueues()) await q.obliterate({ force: true });
  await pin('refail', 'p1', 'msg_refail_1');
  expect(await streamLength()).toBe(1);
  // Its own connection (the dispatcher closes it); job adds that fail once (a Redis blip), then go through.
  const redis = createRedis({ url: svc.rt.redisInfo.url || undefined, clusterNodes: svc.config.redisClusterNodes }, 'worker', 'dispatch-refail');
  redis.on('error', () => undefined);
  let adds = 0;
  const dispatcher = new SyncDispatcher({
    redis,
    keys: svc.rt.keys,
    partners: svc.rt.partners,
    producer: { enqueueBulk: (jobs) => (++adds === 1 ? Promise.reject(new Error('job add failed')) : svc.rt.syncProducer.enqueueBulk(jobs)) },
    log: pino({ level: 'silent' }),
    // Far past the wait below: only this dispatcher's own second read can dispatch the batch in time.
    reclaimMs: 300_000,
  });
  dispatcher.start();
  try {
    await waitFor(async () => (await streamLength()) === 0, 10_000);
    expect(adds).toBe(2);
    for (const t of TARGETS) expect(await jobIdOf('refail', t)).toBeTruthy();
  } finally {
    await dispatcher.close();
  }
}, 60_000);

/**
 * Redis outage (the external contract §3): while the test's redis-server is down (SIGKILL, a crash) a signed
 * event is answered 503 problem+json — never a 2xx for an event that is not stored — readiness is
 * 503 and liveness 200. After a restart the service reconnects by itself, accepts events again,
 * and everything acknowledged before the crash is still there (AOF, appendfsync always).
 */
import { mkdirSync, rmSync } from 'node:fs';
import type { Redis } from 'ioredis';
import { join } from 'node:path';
import { shardOf, syncJobId } from '../../src/queues/queues.js';
import { createPartner, sampleShow, sendEvent, showEvent, startService, waitFor, type TestService } from '../helpers/service.js';

let svc: TestService;
const PARTNER = 'rdp';
let secret: string;
/** True while this test has the redis-server stopped. */
let redisStopped = false;

beforeAll(async () => {
  svc = await startService();
  secret = await createPartner(svc, PARTNER);
  // A target, so that an accepted event also goes through the BullMQ producer.
  const t = await svc.api(`/v1/partners/${PARTNER}/targets?verify=false`, { json: { id: 'rd-yt', platform: 'youtube', name: 'YT', credentials: { refreshToken: 'r' }, commissionRateBps: 500 } });
  expect(t.status).toBe(201);
});
afterAll(async () => {
  // If a test failed mid-outage, bring the server back so that close() can quit cleanly. (Calling
  // start() on a running server would spawn a second process and lose track of the first.)
  if (redisStopped) await svc.redis.start();
  await svc.close();
});

const ready = async (): Promise<boolean> => (await fetch(`${svc.url}/health/ready`)).status === 200;

test('503 while Redis is down, back to 202 after it restarts, nothing acknowledged is lost', async () => {
  // Before the crash: an acknowledged event.
  const before = await sendEvent(svc, PARTNER, secret, showEvent('show.scheduled', sampleShow('before'), '2026-11-24T17:00:00Z'), { webhookId: 'msg_rd_before' });
  expect(before.status).toBe(202);
  expect(await ready()).toBe(true);

  // A tracked link clicked once (its record is now cached by the API process).
  const linkUrl = await svc.rt.links.ensure({ partnerId: PARTNER, showId: 'before', targetId: 'rd-yt', platform: 'youtube', productId: 'p1', url: 'https://shop.example.com/p1' });
  const click = (): Promise<Response> => fetch(`${svc.url}/l/${linkUrl.slice(linkUrl.lastIndexOf('/') + 1)}`, { redirect: 'manual', headers: { 'user-agent': 'Mozilla/5.0 Chrome/131.0' } });
  expect((await click()).status).toBe(302);

  redisStopped = true;
  await svc.redis.stop('SIGKILL');

  // The client notices the dead socket asynchronously; every answer meanwhile must be a 503 (or, for the
  // very first request, a 503 after the command times out), never a 2xx.
  const down = await sendEvent(svc, PARTNER, secret, showEvent('show.scheduled', sampleShow('during'), '2026-11-24T17:05:00Z'), { webhookId: 'msg_rd_during' });
  expect(down.status).toBe(503);
  expect(down.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const p = (await down.json()) as { status: number; title: string; detail: string };
  expect(p).toMatchObject({ status: 503, type: 'https://syndicast.dev/problems/service-unavailable' });
  // Not "nothing was stored": a write sent to a Redis that stalled may land after the 503.
  expect(p.detail).toMatch(/may or may not have been stored: retry later with the same webhook-id/);

  // A duplicate of an event acknowledged earlier cannot be checked either: 503, not 200.
  const dupDown = await sendEvent(svc, PARTNER, secret, showEvent('show.scheduled', sampleShow('before'), '2026-11-24T17:00:00Z'), { webhookId: 'msg_rd_before' });
  expect(dupDown.status).toBe(503);

  const readyDown = await fetch(`${svc.url}/health/ready`);
  expect(readyDown.status).toBe(503);
  expect(readyDown.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const live = await fetch(`${svc.url}/health/live`);
  expect(live.status).toBe(200);

  // Operator reads are 503 too (not 500).
  const read = await svc.api(`/v1/partners/${PARTNER}`);
  expect(read.status).toBe(503);
  expect(((await read.json()) as { detail: string }).detail).toMatch(/may or may not have taken effect/);

  // A click whose record cannot be stored is no redirect (the link itself is known from the cache).
  const clickDown = await Promise.all([click(), click()]);
  expect(clickDown.map((r) => r.status)).toEqual([503, 503]);
  expect(clickDown[0]!.headers.get('content-type')).toMatch(/^application\/problem\+json/);

  await svc.redis.start();
  redisStopped = false;
  await waitFor(ready, 15_000, 100);

  // Data acknowledged before the crash survived.
  const partner = await svc.api(`/v1/partners/${PARTNER}`);
  expect(partner.status).toBe(200);
  expect(await partner.json()).toMatchObject({ id: PARTNER });
  const targets = (await (await svc.api(`/v1/partners/${PARTNER}/targets`)).json()) as { targets: { id: string }[] };
  expect(targets.targets.map((t) => t.id)).toEqual(['rd-yt']);
  expect((await svc.rt.shows.desired(PARTNER, 'before'))?.title).toBe('Show before');
  // The refused event left nothing: neither its inbox entry nor its show.
  expect(await svc.rt.redis.exists(svc.rt.keys.showInbox(PARTNER, 'during', 'msg_rd_during'))).toBe(0);
  expect(await svc.rt.redis.exists(svc.rt.keys.desired(PARTNER, 'during'))).toBe(0);

  // The partner retries with a new webhook-id (the BullMQ producer may need a moment to reconnect too).
  // Every answer on the way is recorded: a 503 is honest, a 500 (or a 2xx duplicate) is a bug.
  const statuses: number[] = [];
  let n = 0;
  const again = await waitFor(
    async () => {
      const r = await sendEvent(svc, PARTNER, secret, showEvent('show.scheduled', sampleShow('during'), '2026-11-24T17:05:00Z'), { webhookId: `msg_rd_retry_${++n}` });
      statuses.push(r.status);
      return r.status === 202 ? r : undefined;
    },
    15_000,
    200,
  );
  expect(statuses.filter((s) => s !== 503)).toEqual([202]);
  expect(await again.json()).toMatchObject({ duplicate: false });
  const d = await svc.rt.shows.desired(PARTNER, 'during');
  expect(d).toMatchObject({ title: 'Show during', state: 'scheduled', version: 1 });
  const show = await svc.api(`/v1/partners/${PARTNER}/shows/during`);
  expect(show.status).toBe(200);

  // The retried event's own sync job reaches its queue (no mirror worker runs here, so it stays there).
  // The sync dispatcher makes it from the event's dispatch entry after the 202, and this test's own
  // queue handle may still be reconnecting after the restart ("Stream isn't writeable"): waitFor reads
  // again until the job is there (it retries a failed read, never a failed assertion).
  const job = { partnerId: PARTNER, showId: 'during', targetId: 'rd-yt' };
  const queue = svc.rt.syncProducer.queue('youtube', shardOf(PARTNER, 'during', svc.config.syncShards));
  const jobId = await waitFor(async () => (await queue.getDeduplicationJobId(syncJobId(job))) ?? undefined, 15_000, 100);
  expect(jobId).toBeTruthy();
  // The job also carries the request id of the HTTP request that caused it (log correlation).
  expect((await queue.getJob(jobId!))?.data).toEqual({ ...job, requestId: expect.stringMatching(/^\S+$/) });
});

test('/health/ready is 503 while Redis answers but refuses writes (maxmemory reached, noeviction: OOM), 200 again after', async () => {
  expect(await ready()).toBe(true);
  const admin = svc.redis.client();
  try {
    // Below what the server already uses: with maxmemory-policy noeviction every write is refused (OOM).
    await admin.config('SET', 'maxmemory', '1');
    const r = await fetch(`${svc.url}/health/ready`);
    expect(r.status).toBe(503);
    expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(((await r.json()) as { detail?: string }).detail).toMatch(/refuses writes.*OOM/);
    // Liveness is about the process only.
    expect((await fetch(`${svc.url}/health/live`)).status).toBe(200);
  } finally {
    await admin.config('SET', 'maxmemory', '0');
    admin.disconnect();
  }
  expect(await ready()).toBe(true);
});

test('a signed event while a script keeps Redis busy (BUSY: past lua-time-limit) is 503 with Retry-After, not 500; 202 again after', async () => {
  const admin = svc.redis.client() as Redis;
  const busy = svc.redis.client() as Redis;
  const send = (id: string): Promise<Response> => sendEvent(svc, PARTNER, secret, showEvent('show.scheduled', sampleShow('busy'), '2026-11-24T17:00:00Z'), { webhookId: id });
  // Redis answers BUSY to every other command once a script has run this long (the default is 5 s,
  // longer than the API's command timeout: then the request times out, already a 503).
  await admin.config('SET', 'lua-time-limit', '50');
  // A script that writes nothing never ends by itself; SCRIPT KILL ends it (its call then fails).
  const running = busy.eval('while true do end', 0).then(
    () => undefined,
    (err: Error) => err,
  );
  try {
    await waitFor(async () => (await admin.ping().then(() => undefined, (err: Error) => err.message))?.match(/^BUSY/), 10_000, 20);
    const r = await send('busy-1');
    expect(r.status).toBe(503);
    expect(r.headers.get('retry-after')).toBe('5');
    expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  } finally {
    await admin.script('KILL').catch(() => undefined);
    expect(String(await running)).toMatch(/killed/i);
    await admin.config('SET', 'lua-time-limit', '5000');
    admin.disconnect();
    busy.disconnect();
  }
  expect((await send('busy-1')).status).toBe(202);
});

test('a signed event while Redis refuses writes because it cannot persist (MISCONF: a failed snapshot, a full disk) is 503 with Retry-After, not 500; 202 again after', async () => {
  const admin = svc.redis.client() as Redis;
  const send = (id: string): Promise<Response> => sendEvent(svc, PARTNER, secret, showEvent('show.scheduled', sampleShow('misconf'), '2026-11-24T17:00:00Z'), { webhookId: id });
  // A snapshot whose file cannot be written (its name, dump.rdb, is a directory): with save points and
  // stop-writes-on-bgsave-error, Redis refuses every write with MISCONF until a snapshot succeeds.
  const blocker = join(svc.redis.dir, 'dump.rdb');
  mkdirSync(blocker);
  try {
    await admin.config('SET', 'save', '3600 1');
    await admin.config('SET', 'stop-writes-on-bgsave-error', 'yes');
    await admin.bgsave();
    await waitFor(async () => /rdb_bgsave_in_progress:0[\s\S]*rdb_last_bgsave_status:err/.test(await admin.info('persistence')), 10_000);
    await expect(admin.set('probe', '1')).rejects.toThrow(/^MISCONF/);
    const r = await send('misconf-1');
    expect(r.status).toBe(503);
    expect(r.headers.get('retry-after')).toBe('5');
    expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  } finally {
    await admin.config('SET', 'stop-writes-on-bgsave-error', 'no');
    await admin.config('SET', 'save', '');
    admin.disconnect();
    rmSync(blocker, { recursive: true, force: true });
  }
  expect((await send('misconf-1')).status).toBe(202);
});

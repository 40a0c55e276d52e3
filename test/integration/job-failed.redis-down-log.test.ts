/**
 * Jobs whose run meets a Redis outage are not an error line each: BullMQ records a job's failure in
 * Redis, so the jobs in flight when Redis stopped (their own Redis calls refused) were all failed right
 * after it came back, one 'sync job failed' line per job (20 in flight, 20 lines after 'Redis reachable
 * again'); they were then counted into the outage's report instead (RedisOutageLog.jobFailed, its
 * counting tested in test/unit/redis-outage-log.test.ts). Since sync runs that Redis refused or did not
 * answer are handed back (handBackWhileRedisRefuses, src/queues/hand-backs.ts), such a job is not failed
 * at all: it waits REDIS_REFUSED_RETRY_MS and runs again, no attempt spent. A job that fails for another
 * reason still has its own line. Real redis-server, stopped and started again under real sync workers;
 * the pino output is captured.
 */
import { Queue, type Worker } from 'bullmq';
import { startSyncWorkers } from '../../src/mirror/sync.worker.js';
import type { SyncService } from '../../src/mirror/sync.service.js';
import { Keys } from '../../src/store/keys.js';
import { createRedis, type RedisClient } from '../../src/store/redis.js';
import { logSink } from '../helpers/log-sink.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { waitFor } from '../helpers/service.js';

interface Line {
  level: number;
  msg: string;
  jobsFailed?: number;
  jobId?: string;
  err?: { message: string };
}

const IN_FLIGHT = 20;
let redis: TestRedis;
let stopped = false;
const { log, lines } = logSink<Line>();
let workers: Worker[] = [];
const clients: RedisClient[] = [];
let queue: Queue | undefined;

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  if (stopped) await redis.start();
  await queue?.close();
  await Promise.all(workers.map((w) => w.close()));
  for (const c of clients) c.disconnect();
  await redis.destroy();
});

test(`Redis stopped under ${IN_FLIGHT} running sync jobs (one attempt each): none is failed, none is an error line, each runs again and completes; another job's failure is its own line`, async () => {
  const client = (role: 'api' | 'worker') => {
    const c = createRedis({ url: redis.url }, role, 'syndicast-test');
    c.on('error', () => undefined);
    clients.push(c);
    return c;
  };
  // The processor's Redis fails fast while Redis is down, as the API role's client does under npm start.
  const api = client('api');
  let running = 0;
  let release: () => void = () => undefined;
  const stop = new Promise<void>((r) => (release = r));
  const service = {
    sync: async (job: { showId: string }) => {
      if (job.showId === 'refused') throw new Error('the platform refused the call');
      running++;
      await stop;
      await api.get('anything');
      return { kind: 'done', state: 'ready' };
    },
  } as unknown as SyncService;
  const keys = new Keys(`jfl${process.pid}`);
  // A handed-back job waits 1 s (REDIS_REFUSED_RETRY_MS, 5 s by default) before it runs again.
  workers = startSyncWorkers(service, { connection: client('worker'), keys, shards: 1, concurrency: IN_FLIGHT, refusedRetryMs: 1_000, log: log.child({ module: 'sync-worker' }) });
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  queue = new Queue('sync-youtube-0', { connection: client('worker'), prefix: keys.queuePrefix('sync-youtube-0') });
  for (let i = 0; i < IN_FLIGHT; i++) await queue.add('sync', { partnerId: 'p', showId: `s${i}`, targetId: 't' }, { attempts: 1 });
  await waitFor(async () => running === IN_FLIGHT);

  await redis.stop();
  stopped = true;
  // The jobs' own Redis calls must meet the outage: until the client has seen its socket close, a call
  // is still written and then retried after the restart (maxRetriesPerRequest 1), and succeeds — a job
  // that completes, not one failed by the outage (a loaded CI run got 19 failures of 20, waitFor timed out).
  await waitFor(async () => api.status !== 'ready');
  release();
  await waitFor(async () => lines.some((l) => /Redis unavailable/.test(l.msg)));
  await redis.start();
  stopped = false;
  // Handed back (delayed REDIS_REFUSED_RETRY_MS, no attempt spent), then run again once Redis answers: completed.
  await waitFor(async () => (await queue!.getCompletedCount()) === IN_FLIGHT, 25_000);
  expect(await queue.getFailedCount()).toBe(0);
  expect(lines.filter((l) => l.msg === 'sync job failed')).toEqual([]);
  // Error lines in all: the outage (and a reminder at most).
  expect(lines.filter((l) => l.level >= 50).length).toBeLessThanOrEqual(3);

  const before = lines.length;
  await queue.add('sync', { partnerId: 'p', showId: 'refused', targetId: 't' }, { attempts: 1 });
  const own = await waitFor(async () => lines.slice(before).find((l) => l.msg === 'sync job failed'));
  expect(own).toMatchObject({ level: 50, err: { message: 'the platform refused the call' } });
}, 45_000);

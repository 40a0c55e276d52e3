/**
 * The sync workers move a job to delayed from its handler too (a run that must wait: rate limits, pin
 * delays, a slow target's cap), so BullMQ's lock renewal of that job can come after the move, find no
 * lock and emit "could not renew lock" (src/queues/hand-backs.ts). As for deliveries
 * (delivery.lock-renewal.test.ts): a debug line, not an error line, and the job runs again once.
 *
 * Deterministic: the workers reach Redis through a proxy that holds the job's moveToDelayed until the
 * next lock renewal of that job comes after it. Real redis-server, the real sync workers
 * (startSyncWorkers) around a stand-in SyncService.
 */
import { Queue, type Worker } from 'bullmq';
import { startSyncWorkers } from '../../src/mirror/sync.worker.js';
import type { SyncService } from '../../src/mirror/sync.service.js';
import { allSyncQueueNames } from '../../src/queues/queues.js';
import { Keys } from '../../src/store/keys.js';
import { logSink } from '../helpers/log-sink.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { startRedisHoldProxy, type RedisHoldProxy } from '../helpers/redis-hold-proxy.js';
import { waitFor } from '../helpers/service.js';

interface Line {
  level: number;
  msg: string;
  jobId?: string;
  err?: { message?: string };
}

let redis: TestRedis;
let proxy: RedisHoldProxy;
let workers: Worker[] = [];
let queue: Queue | undefined;

beforeAll(async () => {
  redis = await startRedis();
  proxy = await startRedisHoldProxy(redis.port);
});
afterAll(async () => {
  await Promise.all(workers.map((w) => w.close(true)));
  await queue?.close();
  await proxy?.close();
  await redis?.destroy();
});

test('a sync run that moves its job to delayed while a lock renewal is sent: a debug line, the job runs again once', async () => {
  const keys = new Keys(`slr${process.pid}`);
  const { log, lines } = logSink<Line>('debug');
  let runs = 0;
  // The first run waits 400 ms (past half the renewal period), then must wait: delayed for 200 ms. The second is done.
  const service = {
    sync: async () => {
      runs += 1;
      if (runs > 1) return { kind: 'done', state: 'none' };
      await new Promise((r) => setTimeout(r, 400));
      return { kind: 'delay', delayMs: 200, reason: 'rate limited' };
    },
  } as unknown as SyncService;
  const jobId = 'sync-lock-race';
  const hold = proxy.holdNext(
    (c) => c.includes(jobId) && /\r\n\$2\r\n12\r\n/.test(c),
    (c) => c.includes(jobId) && /\r\n\$1\r\n1\r\n/.test(c) && c.includes(':stalled'),
  );
  // A 1.2 s lock: renewed every 300 ms, each time for the jobs that have run 300 ms or more.
  workers = startSyncWorkers(service, { connection: { host: '127.0.0.1', port: proxy.port, maxRetriesPerRequest: null }, keys, shards: 1, concurrency: 1, lockMs: 1_200, log });
  const name = allSyncQueueNames(1)[0]!.name;
  queue = new Queue(name, { connection: { host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: null }, prefix: keys.queuePrefix(name) });
  await queue.add('sync', { partnerId: 'p1', showId: 's1', targetId: 't1' }, { jobId });

  await hold.held;
  expect(await hold.released).toBe('until');
  await waitFor(async () => (await queue!.getJobState(jobId)) === 'completed', 10_000, 20);
  const raced = (): Line[] => lines.filter((l) => l.level === 20 && l.jobId === jobId && /lock renewal of a job this worker had just moved to delayed/.test(l.msg));
  const renewalErrors = (): Line[] => lines.filter((l) => l.level >= 50 && /could not renew lock/.test(l.err?.message ?? ''));
  await waitFor(async () => raced().length > 0 || renewalErrors().length > 0, 5_000, 20);
  // Before: `sync worker error` "could not renew lock for job sync-lock-race" at error level.
  expect(renewalErrors()).toEqual([]);
  expect(raced()).toHaveLength(1);
  expect(runs).toBe(2);
}, 20_000);

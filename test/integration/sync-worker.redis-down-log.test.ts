/**
 * While Redis is down the sync workers log the outage once, then at most one reminder per interval
 * with a count of what was left out, and once when Redis answers again. Stopping Redis under a
 * running worker (npm start) produced ~35 error lines a second from the sync workers. Real
 * redis-server, stopped and started again; the pino output is captured.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Worker } from 'bullmq';
import { startSyncWorkers } from '../../src/mirror/sync.worker.js';
import type { SyncService } from '../../src/mirror/sync.service.js';
import { Keys } from '../../src/store/keys.js';
import { createRedis } from '../../src/store/redis.js';
import { logSink } from '../helpers/log-sink.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';

interface Line {
  level: number;
  msg: string;
  suppressed?: number;
}

let redis: TestRedis;
let stopped = false;
const { log, lines } = logSink<Line>();
let workers: Worker[] = [];

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  if (stopped) await redis.start();
  await Promise.all(workers.map((w) => w.close()));
  await redis.destroy();
});

test('Redis stopped for ~3 s: a handful of lines, not one per reconnect attempt; recovery is logged', async () => {
  // The connections npm start gives its workers (src/main/runtime.ts bullConnection: one client each).
  const conn = () => {
    const c = createRedis({ url: redis.url }, 'worker', 'syndicast-bull');
    c.on('error', () => undefined);
    return c;
  };
  // Jobs never reach it: the queues stay empty.
  const service = { sync: () => Promise.reject(new Error('no jobs expected')) } as unknown as SyncService;
  workers = startSyncWorkers(service, { connection: conn(), keys: new Keys(`rdlog${process.pid}`), shards: 2, concurrency: 5, log: log.child({ module: 'sync-worker' }) });
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  await sleep(300);
  const errors = (): Line[] => lines.filter((l) => l.level >= 40);
  expect(errors()).toEqual([]);

  await redis.stop();
  stopped = true;
  await sleep(3_000);
  const during = errors();
  // Once when it starts (every worker shares the one notice), not ~100 lines.
  expect(during.length).toBeGreaterThanOrEqual(1);
  expect(during.length).toBeLessThanOrEqual(3);
  expect(during[0]!.msg).toMatch(/Redis unavailable/);

  await redis.start();
  stopped = false;
  const t0 = Date.now();
  while (!lines.some((l) => /Redis reachable again/.test(l.msg)) && Date.now() - t0 < 10_000) await sleep(100);
  const back = lines.find((l) => /Redis reachable again/.test(l.msg));
  expect(back).toBeDefined();
  expect(typeof back!.suppressed).toBe('number');
  expect(back!.suppressed).toBeGreaterThan(0);
}, 30_000);

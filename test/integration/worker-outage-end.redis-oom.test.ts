/**
 * A Redis that only refuses writes (full: `maxmemory` with noeviction, "OOM command not allowed") for a
 * while: BullMQ's stalled check (a write script every stalledInterval) is refused and its error opens
 * the worker's outage log ("Redis unavailable"), but such a Redis never reconnects, so the workers'
 * `ready` never ends it; before, only a job taken after a refused fetch did, and an idle worker has no
 * fetch refused: the outage stayed open for good (no end line, the next outage got no first line, its
 * failed jobs counted into the old one). Now a fetch or a stalled check that Redis runs ends it (src/lib/redis-outage-log.ts). Real Redis, a bare BullMQ Worker wired as the services' are.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { handleWorkerOutages, RedisOutageLog } from '../../src/lib/redis-outage-log.js';
import { createRedis } from '../../src/store/redis.js';
import { logSink } from '../helpers/log-sink.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';

interface Line {
  msg: string;
}

let redis: TestRedis;
let admin: Redis;
const closers: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  redis = await startRedis();
  admin = redis.client() as Redis;
});
afterAll(async () => {
  await admin?.config('SET', 'maxmemory', '0').catch(() => undefined);
  for (const close of closers.reverse()) await close().catch(() => undefined);
  admin?.disconnect();
  await redis?.destroy();
});

async function waitFor(ok: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error('waitFor timed out');
    await sleep(50);
  }
}

function conn(): Redis {
  const c = createRedis({ url: redis.url }, 'worker', 'syndicast-bull') as Redis;
  c.on('error', () => undefined);
  closers.unshift(async () => c.disconnect());
  return c;
}

/** A worker of queue `name` checking stalled jobs every 500 ms, its outage lines in `lines`. */
async function worker(name: string): Promise<{ lines: Line[]; queue: Queue }> {
  const { log, lines } = logSink<Line>();
  const outage = new RedisOutageLog(log, name);
  const w = new Worker(name, async () => 'ok', { connection: conn(), stalledInterval: 500 });
  handleWorkerOutages(w, outage, {}, `${name} error`);
  const queue = new Queue(name, { connection: conn() });
  closers.push(() => w.close(), () => queue.close());
  await w.waitUntilReady();
  // Settled into its wait for a job (a blocking read, not refused): no fetch of it is refused below.
  await sleep(500);
  return { lines, queue };
}

/**
 * Redis full until the idle worker's stalled check (every 500 ms) is refused and opens the outage: a wait
 * for that line (up to 10 s: the first check is due 500 ms in, which a loaded machine can delay), not a
 * fixed 2 s, which the cases only waited (CI time, docs/testing.md).
 */
async function fullUntilRefused(lines: Line[]): Promise<void> {
  await admin.config('SET', 'maxmemory', '1');
  try {
    await waitFor(() => lines.some((l) => /Redis unavailable/.test(l.msg)), 10_000);
  } finally {
    await admin.config('SET', 'maxmemory', '0');
  }
}

test('a job added and completed after a full Redis has room again: the outage has its end line', async () => {
  const { lines, queue } = await worker(`oomend-job-${process.pid}`);
  await fullUntilRefused(lines);
  const job = await queue.add('j', {});
  await waitFor(async () => (await job.getState()) === 'completed', 10_000);
  await waitFor(async () => lines.some((l) => /Redis reachable again/.test(l.msg)), 10_000);
}, 40_000);

test('an idle worker: its next stalled check that Redis runs ends the outage', async () => {
  const { lines } = await worker(`oomend-idle-${process.pid}`);
  await fullUntilRefused(lines);
  // No job needed: BullMQ checks again 5 s after a refused check plus its stalledInterval (500 ms here):
  // 5.5 s at most once Redis has room; 15 s for a loaded machine (8 s left it 2.5 s). Without the end, never.
  await waitFor(async () => lines.some((l) => /Redis reachable again/.test(l.msg)), 15_000);
}, 40_000);

test("a stalled check that succeeds without writing (another worker's check key still set) does not end the outage while Redis still refuses writes", async () => {
  const name = `oomend-keyset-${process.pid}`;
  const { lines } = await worker(name);
  await admin.config('SET', 'maxmemory', '1');
  try {
    await waitFor(() => lines.some((l) => /Redis unavailable/.test(l.msg)), 10_000);
    // As another process's check would: the queue's stalled-check key set, so this worker's next checks
    // return before their first write and succeed. One pipeline (a MULTI is refused whole: its SET is
    // refused as it is queued), Redis full again within a fraction of a millisecond: a window this
    // worker's check (every 500 ms, 5 s after a refused one) all but never meets.
    await admin.pipeline().config('SET', 'maxmemory', '0').set(`bull:${name}:stalled-check`, '1', 'PX', 20_000).config('SET', 'maxmemory', '1').exec();
    // Checks every 500 ms, and 5 s after a refused one: past two of them, Redis still full.
    await sleep(7_000);
    expect(lines.filter((l) => /Redis reachable again/.test(l.msg))).toEqual([]);
  } finally {
    await admin.config('SET', 'maxmemory', '0');
  }
  // Room again: the next check's probe write is accepted, the end line comes.
  await waitFor(() => lines.some((l) => /Redis reachable again/.test(l.msg)), 15_000);
}, 45_000);

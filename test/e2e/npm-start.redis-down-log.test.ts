/**
 * `npm start` (src/main/all.ts, a real child process) while its Redis is down: the main Redis client
 * logs the outage once, a reminder at most every 15 s, and once when Redis answers again, like the
 * BullMQ workers (src/lib/redis-outage-log.ts). It logged "redis connection error" on every reconnect
 * attempt, one line per ~0.2-2 s by its backoff for as long as Redis was down. So did the queue
 * dashboard's and the scheduler's queue connections ("queue connection error", "scheduler queue
 * connection error") and the relay's 1 s pass ("relay tick failed").
 */
import { startAllProcess } from '../helpers/npm-start.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { waitFor } from '../helpers/service.js';
import type { WorkerProcess } from '../helpers/worker-process.js';

/**
 * Long enough for 7 reconnect attempts of each connection (its backoff 0.2, 0.4, … s: attempts at
 * 0.2, 0.6, 1.2, 2, 3, 4.2, 5.6 s) and 6 relay passes: a line per attempt repeats well over 3 times.
 */
const DOWN_MS = 6_000;

let redis: TestRedis;
let child: WorkerProcess | undefined;
let redisStopped = false;

beforeAll(async () => {
  redis = await startRedis();
}, 30_000);
afterAll(async () => {
  await child?.kill('SIGTERM');
  if (redisStopped) await redis.start();
  await redis?.destroy();
});

interface Line {
  level: number;
  msg: string;
}

function linesOf(text: string): Line[] {
  return text.split('\n').flatMap((l) => {
    try {
      const j = JSON.parse(l) as Partial<Line>;
      return typeof j.msg === 'string' ? [{ level: j.level ?? 0, msg: j.msg }] : [];
    } catch {
      return [];
    }
  });
}

test('npm start: the main Redis client logs an outage once and its end once, not every reconnect attempt', async () => {
  let url: string;
  ({ child, url } = await startAllProcess(redis.env, { LOG_LEVEL: 'info' }));
  await waitFor(async () => child!.output().includes('syndicast started'), 30_000, 100);
  const mark = child.output().length;

  redisStopped = true;
  await redis.stop('SIGKILL');
  await new Promise((r) => setTimeout(r, DOWN_MS));
  const during = linesOf(child.output().slice(mark));
  const main = during.filter((l) => /^redis connection error$|^redis client:/.test(l.msg));
  // One line for the outage (its first reminder would come after 15 s), where there was one per attempt.
  expect(main.map((l) => l.msg)).toEqual(['redis client: Redis unavailable (repeats are logged at most every 15 s)']);
  await redis.start();
  redisStopped = false;
  await waitFor(async () => (await fetch(`${url}/health/ready`)).status === 200, 30_000, 200);
  await waitFor(async () => linesOf(child!.output().slice(mark)).some((l) => l.msg === 'redis client: Redis reachable again'), 10_000, 100);

  expect(linesOf(child.output().slice(mark)).filter((l) => l.msg === 'redis client: Redis reachable again')).toHaveLength(1);
  // Nothing else in the process logs each attempt either (the queue dashboard's and the scheduler's
  // queue connections, the relay's passes): no message repeats more than a few times.
  const counts = new Map<string, number>();
  for (const l of during) counts.set(l.msg, (counts.get(l.msg) ?? 0) + 1);
  expect([...counts].filter(([, n]) => n > 3)).toEqual([]);
  expect(child.proc.exitCode).toBeNull();
}, 120_000);

/**
 * Conformance of INGEST_SYNC_JOBS=inline (src/queues/inline-sync.ts): the sync jobs the
 * ingest script makes itself in BullMQ's keys (INGEST_SHOW_ONE_INLINE_LUA) are what SyncProducer's
 * addBulk makes for the same show and target, side by side on one Redis under two key prefixes: the
 * same job hash (opts compared parsed: Lua's cjson orders keys its own way; the added-at timestamp
 * checked to be the add's time), deduplication key, wait list (FIFO across two shows' jobs), marker
 * and event stream entries; a second add deduplicated the same way; a paused queue the
 * same; a maxed queue (concurrency in meta) the same; and a BullMQ Worker runs both alike,
 * keepLastIfActive included (an add while the job is active leaves one follow-up job, run after it), a
 * failed attempt retried (attempts, backoff), and a job failed for good kept in the failed set
 * (removeOnFail) with its deduplication id released. One Redis only: the script names its keys inside.
 */
import { randomBytes } from 'node:crypto';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { InlineSyncJobs } from '../../src/queues/inline-sync.js';
import { SecretBox } from '../../src/lib/crypto.js';
import { shardOf, SyncProducer, syncQueueName, type SyncJob } from '../../src/queues/queues.js';
import { Keys } from '../../src/store/keys.js';
import { ShowRepository } from '../../src/store/show.repository.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { testTopology } from '../helpers/redis-cluster.js';

const single = testTopology() === 'single' ? test : test.skip;
const SHARDS = 2;
const target = { id: 't1', platform: 'youtube' as const, enabled: true };

let redis: TestRedis;
let client: Redis;
const closers: (() => Promise<unknown>)[] = [];
beforeAll(async () => {
  redis = await startRedis();
  client = new Redis(redis.url);
});
afterAll(async () => {
  for (const c of closers.reverse()) await c();
  client?.disconnect();
  await redis?.destroy();
});

/** The two ways, each under its own key prefix: BullMQ's addBulk (the dispatcher's) and the ingest script (inline). */
function sides(): { bulk: (showId: string) => Promise<void>; inline: (showId: string) => Promise<void>; keysA: Keys; keysB: Keys } {
  const tag = randomBytes(3).toString('hex');
  const keysA = new Keys(`ia${tag}`);
  const keysB = new Keys(`ib${tag}`);
  const producer = new SyncProducer({ host: '127.0.0.1', port: redis.port }, keysA, SHARDS);
  closers.push(() => producer.close());
  const shows = new ShowRepository(client, keysB, 86_400, new SecretBox(randomBytes(32).toString('base64')));
  const jobs = new InlineSyncJobs(keysB, SHARDS);
  let n = 0;
  return {
    keysA,
    keysB,
    bulk: (showId) => producer.enqueueBulk([{ platform: 'youtube', job: { partnerId: 'p1', showId, targetId: 't1' } }]),
    inline: async (showId) => {
      const w = `w${++n}`;
      const r = await shows.ingestOne('p1', showId, w, `show:${showId}`, '{"type":"product.pinned"}', `2026-12-03T17:00:00.000Z|${w}`, { field: 'pin:prod1', value: '{"pinned":true}' }, undefined, undefined, jobs.args('p1', showId, [target], undefined));
      expect(r.duplicate).toBe(false);
    },
  };
}

/** What a queue holds for a job id: its hash (opts parsed, timestamp only checked to be a number), the wait/paused lists, the marker, the dedup keys, the event names. */
async function snapshot(keys: Keys, showId: string, jobId: string) {
  const qp = queuePrefixOf(keys, showId);
  const h = await client.hgetall(qp + jobId);
  const { opts, timestamp, ...rest } = h;
  const dedupId = `sync:p1:${showId}:t1`;
  const events = (await client.xrange(qp + 'events', '-', '+')).map(([, f]) => f.filter((_, i) => i % 2 === 0).map((k, i) => `${k}=${f[2 * i + 1]}`).join(' '));
  return {
    hash: { ...rest, opts: opts ? (JSON.parse(opts) as unknown) : undefined, timestamp: /^\d+$/.test(timestamp ?? '') },
    wait: await client.lrange(qp + 'wait', 0, -1),
    paused: await client.lrange(qp + 'paused', 0, -1),
    marker: await client.zrange(qp + 'marker', 0, -1, 'WITHSCORES'),
    dedup: await client.get(qp + 'de:' + dedupId),
    dedupTtl: await client.ttl(qp + 'de:' + dedupId),
    next: await client.hgetall(qp + 'dn:' + dedupId),
    id: await client.get(qp + 'id'),
    maxEvents: await client.hget(qp + 'meta', 'opts.maxLenEvents'),
    events,
  };
}

function parsedNext(n: Record<string, string>): Record<string, unknown> {
  return { ...n, opts: n['opts'] ? (JSON.parse(n['opts']) as unknown) : undefined };
}

/** The queue key prefix of the show's sync queue under `keys`. */
function queuePrefixOf(keys: Keys, showId: string): string {
  const name = syncQueueName('youtube', shardOf('p1', showId, SHARDS));
  return `${keys.queuePrefix(name)}:${name}:`;
}

single('the script makes the job addBulk makes, and deduplicates a second add the same way', async () => {
  const s = sides();
  const before = Date.now();
  await s.bulk('s1');
  await s.inline('s1');
  const after = Date.now();
  const a = await snapshot(s.keysA, 's1', '1');
  const b = await snapshot(s.keysB, 's1', '1');
  expect(b).toEqual(a);
  // the job's added-at time (bull-board, Queue.clean's grace, age-based retention): now, on both sides
  for (const keys of [s.keysA, s.keysB]) {
    const at = Number(await client.hget(queuePrefixOf(keys, 's1') + '1', 'timestamp'));
    expect(at).toBeGreaterThanOrEqual(before);
    expect(at).toBeLessThanOrEqual(after);
  }
  expect(a.hash).toMatchObject({ name: 'sync', data: JSON.stringify({ partnerId: 'p1', showId: 's1', targetId: 't1' }), delay: '0', priority: '0', deid: 'sync:p1:s1:t1', timestamp: true });
  expect(a.wait).toEqual(['1']);
  expect(a.dedup).toBe('1');
  // a second add of the same (show, target) while the job waits: deduplicated, no job 2
  await s.bulk('s1');
  await s.inline('s1');
  const a2 = await snapshot(s.keysA, 's1', '2');
  expect(await snapshot(s.keysB, 's1', '2')).toEqual(a2);
  expect(a2.hash).toEqual({ opts: undefined, timestamp: false });
  expect(a2.wait).toEqual(['1']);
  expect(a2.id).toBe('2');
  expect(a2.events.slice(-2)).toEqual(['event=debounced jobId=1 debounceId=sync:p1:s1:t1', 'event=deduplicated jobId=1 deduplicationId=sync:p1:s1:t1 deduplicatedJobId=2']);
});

single('jobs of two shows in one queue wait in the order addBulk gives them (FIFO: the first added runs first)', async () => {
  const s = sides();
  const first = 'f0';
  const shard = shardOf('p1', first, SHARDS);
  let second = 'f1';
  for (let i = 2; shardOf('p1', second, SHARDS) !== shard; i++) second = `f${i}`;
  for (const showId of [first, second]) {
    await s.bulk(showId);
    await s.inline(showId);
  }
  const a = await client.lrange(queuePrefixOf(s.keysA, first) + 'wait', 0, -1);
  expect(await client.lrange(queuePrefixOf(s.keysB, first) + 'wait', 0, -1)).toEqual(a);
  // BullMQ pushes on the left and a Worker takes from the right: job 1 (the first show's) is next
  expect(a).toEqual(['2', '1']);
});

/** Fresh queues on both sides, each prepared by `prepare` (its queue key prefix), one add each way: the two snapshots are equal; returned. */
async function addedAlike(showId: string, prepare: (qp: string) => Promise<unknown>): Promise<Awaited<ReturnType<typeof snapshot>>> {
  const s = sides();
  for (const keys of [s.keysA, s.keysB]) await prepare(queuePrefixOf(keys, showId));
  await s.bulk(showId);
  await s.inline(showId);
  const a = await snapshot(s.keysA, showId, '1');
  expect(await snapshot(s.keysB, showId, '1')).toEqual(a);
  return a;
}

single('a paused queue takes the job in its paused list, no marker, as addBulk does', async () => {
  const a = await addedAlike('s2', (qp) => client.hset(qp + 'meta', 'paused', '1'));
  expect(a.paused).toEqual(['1']);
  expect(a.marker).toEqual([]);
});

single('a Worker runs the script-made job as the addBulk-made one, and keepLastIfActive leaves one follow-up after an add while it runs', async () => {
  const s = sides();
  const name = syncQueueName('youtube', shardOf('p1', 's3', SHARDS));
  const seen = { A: [] as { id: string; data: SyncJob; opts: unknown; attemptsMade: number }[], B: [] as { id: string; data: SyncJob; opts: unknown; attemptsMade: number }[] };
  const release: (() => void)[] = [];
  const started: ((side: 'A' | 'B') => void)[] = [];
  const worker = (side: 'A' | 'B', keys: Keys): Worker => {
    const w = new Worker(
      name,
      async (job: Job<SyncJob>) => {
        seen[side].push({ id: job.id!, data: job.data, opts: job.opts, attemptsMade: job.attemptsMade });
        if (seen[side].length === 1) {
          for (const f of started.splice(0)) f(side);
          await new Promise<void>((r) => release.push(r));
        }
      },
      { connection: { host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: null }, prefix: keys.queuePrefix(name), concurrency: 1 },
    );
    closers.push(() => w.close());
    return w;
  };
  const both = (): Promise<void> => new Promise((resolve) => {
    const got = new Set<string>();
    const on = (side: 'A' | 'B'): void => {
      got.add(side);
      if (got.size === 2) resolve();
      else started.push(on);
    };
    started.push(on);
  });
  const running = both();
  await s.bulk('s3');
  await s.inline('s3');
  const [wa, wb] = [worker('A', s.keysA), worker('B', s.keysB)];
  await running;
  // while job 1 is active: a second add stores the follow-up (dn:) and keeps the dedup key
  await s.bulk('s3');
  await s.inline('s3');
  const a = await snapshot(s.keysA, 's3', '2');
  const b = await snapshot(s.keysB, 's3', '2');
  expect({ ...b, next: parsedNext(b.next), events: b.events.length }).toEqual({ ...a, next: parsedNext(a.next), events: a.events.length });
  expect(a.next).toMatchObject({ name: 'sync', jid: '2' });
  expect(a.dedupTtl).toBe(-1);
  for (const r of release.splice(0)) r();
  const until = Date.now() + 10_000;
  while ((seen.A.length < 2 || seen.B.length < 2) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  expect(seen.B).toEqual(seen.A);
  expect(seen.A.map((j) => j.id)).toEqual(['1', '2']);
  expect(seen.A[0]!.opts).toMatchObject({ attempts: 10, removeOnComplete: true, removeOnFail: { count: 10_000 }, backoff: { type: 'exponential', delay: 1000, jitter: 0.5 }, deduplication: { id: 'sync:p1:s3:t1', keepLastIfActive: true } });
  await new Promise((r) => setTimeout(r, 200));
  // both done and removed (removeOnComplete), the dedup key gone with the last
  const a3 = await snapshot(s.keysA, 's3', '2');
  expect(await snapshot(s.keysB, 's3', '2')).toEqual(a3);
  expect(a3.dedup).toBeNull();
  await Promise.all([wa.close(), wb.close()]);
});

single('a maxed queue (concurrency reached) takes the job in its wait list with no marker, one below it with the marker, as addBulk does', async () => {
  const maxed = await addedAlike('s4', async (qp) => {
    await client.hset(qp + 'meta', 'concurrency', '2');
    await client.lpush(qp + 'active', 'x1', 'x2');
  });
  expect(maxed.wait).toEqual(['1']);
  expect(maxed.marker).toEqual([]);
  const below = await addedAlike('s4', async (qp) => {
    await client.hset(qp + 'meta', 'concurrency', '2');
    await client.lpush(qp + 'active', 'x1');
  });
  expect(below.wait).toEqual(['1']);
  expect(below.marker).toEqual(['0', '0']);
});

/** A Worker per side on the show's queue, running `fn`; what each saw (id, attempt, data, opts). */
function workers(s: ReturnType<typeof sides>, showId: string, fn: (job: Job<SyncJob>) => Promise<void>) {
  const name = syncQueueName('youtube', shardOf('p1', showId, SHARDS));
  const seen = { A: [] as { id: string; attemptsMade: number; data: SyncJob; opts: unknown }[], B: [] as { id: string; attemptsMade: number; data: SyncJob; opts: unknown }[] };
  const ws = (['A', 'B'] as const).map((side) => {
    const keys = side === 'A' ? s.keysA : s.keysB;
    const w = new Worker(
      name,
      async (job: Job<SyncJob>) => {
        seen[side].push({ id: job.id!, attemptsMade: job.attemptsMade, data: job.data, opts: job.opts });
        await fn(job);
      },
      { connection: { host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: null }, prefix: keys.queuePrefix(name), concurrency: 1 },
    );
    closers.push(() => w.close());
    return w;
  });
  const qp = (keys: Keys): string => `${keys.queuePrefix(name)}:${name}:`;
  return { seen, close: () => Promise.all(ws.map((w) => w.close())), qp };
}

async function until(cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond()) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
}

single('a failed attempt is retried alike (attempts, exponential backoff), then completes and is removed', async () => {
  const s = sides();
  await s.bulk('s6');
  await s.inline('s6');
  const w = workers(s, 's6', async (job) => {
    if (job.attemptsMade === 0) throw new Error('platform down');
  });
  await until(() => w.seen.A.length >= 2 && w.seen.B.length >= 2);
  expect(w.seen.B).toEqual(w.seen.A);
  expect(w.seen.A.map((j) => [j.id, j.attemptsMade])).toEqual([
    ['1', 0],
    ['1', 1],
  ]);
  await until(async () => (await client.exists(w.qp(s.keysA) + '1', w.qp(s.keysB) + '1')) === 0);
  for (const keys of [s.keysA, s.keysB]) {
    expect(await client.exists(w.qp(keys) + '1')).toBe(0); // removeOnComplete
    expect(await client.get(w.qp(keys) + 'de:sync:p1:s6:t1')).toBeNull();
  }
  await w.close();
});

single('a job failed for good is kept in the failed set (removeOnFail count) with its deduplication id released, alike', async () => {
  const s = sides();
  await s.bulk('s7');
  await s.inline('s7');
  const w = workers(s, 's7', async () => {
    throw new UnrecoverableError('target gone');
  });
  await until(async () => (await client.zcard(w.qp(s.keysA) + 'failed')) === 1 && (await client.zcard(w.qp(s.keysB) + 'failed')) === 1);
  expect(w.seen.B).toEqual(w.seen.A);
  const kept = async (keys: Keys) => {
    const { opts, finishedOn, processedOn, timestamp, stacktrace, ...rest } = await client.hgetall(w.qp(keys) + '1');
    return { rest, opts: JSON.parse(opts ?? 'null') as unknown, times: [finishedOn, processedOn, timestamp].every((t) => /^\d+$/.test(t ?? '')), stack: typeof stacktrace, failed: await client.zrange(w.qp(keys) + 'failed', 0, -1), dedup: await client.get(w.qp(keys) + 'de:sync:p1:s7:t1') };
  };
  const a = await kept(s.keysA);
  expect(await kept(s.keysB)).toEqual(a);
  expect(a).toMatchObject({ rest: { failedReason: 'target gone', atm: '1', deid: 'sync:p1:s7:t1' }, failed: ['1'], dedup: null, times: true });
  // a new event for the show after the failure makes a new job, alike
  await s.bulk('s7');
  await s.inline('s7');
  await until(() => w.seen.A.length >= 2 && w.seen.B.length >= 2);
  expect(w.seen.B).toEqual(w.seen.A);
  expect(w.seen.A.map((j) => j.id)).toEqual(['1', '2']);
  await w.close();
});

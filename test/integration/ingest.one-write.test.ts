/**
 * The accepted show events read in one event-loop turn send their Lua calls in one socket write of the
 * API's Redis connection (ShowRepository.ingestOne, src/store/redis.ts inOneWrite). Each HTTP request
 * runs in an I/O callback of its own, and the API's connection writes each command on its own, so each
 * event's call was one write syscall. The calls stay separate, each with its own reply, in the order the
 * events came.
 */
import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { Redis } from 'ioredis';
import { SecretBox } from '../../src/lib/crypto.js';
import { Keys } from '../../src/store/keys.js';
import { createRedis } from '../../src/store/redis.js';
import { ShowRepository } from '../../src/store/show.repository.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';

let redis: TestRedis;
let client: Redis;
beforeAll(async () => {
  redis = await startRedis();
  client = createRedis({ url: redis.url }, 'api', 'test-api-writes') as Redis;
  await new Promise((r) => client.once('ready', r)); // the API's connection has no offline queue
});
afterAll(async () => {
  client?.disconnect();
  await redis?.destroy();
});

/** How many times the client's socket hands data to the kernel while `fn` runs and its replies come back. */
async function socketWrites<T>(fn: () => Promise<T>): Promise<{ writes: number; result: T }> {
  const stream = (client as unknown as { stream: Duplex & { _write: (...a: unknown[]) => void; _writev?: (...a: unknown[]) => void } }).stream;
  let writes = 0;
  const w = stream._write;
  const wv = stream._writev;
  stream._write = function (this: Duplex, ...a: unknown[]) {
    writes += 1;
    return w.apply(this, a);
  };
  if (wv) {
    stream._writev = function (this: Duplex, ...a: unknown[]) {
      writes += 1;
      return wv.apply(this, a);
    };
  }
  try {
    const result = await fn();
    return { writes, result };
  } finally {
    stream._write = w;
    if (wv) stream._writev = wv;
  }
}

/** `fn(i)` called from n separate callbacks of one event-loop turn (as requests read from different sockets are). */
function fromSeparateCallbacks<T>(n: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => new Promise<T>((resolve, reject) => setImmediate(() => void fn(i).then(resolve, reject)))));
}

test('the show events of one event-loop turn go out in one socket write, one Lua call each, each answered on its own', async () => {
  const shows = new ShowRepository(client, new Keys('wb' + randomBytes(3).toString('hex')), 86_400, new SecretBox(randomBytes(32).toString('base64')));
  const pin = (showId: string, webhookId: string) =>
    shows.ingestOne('p1', showId, webhookId, `show:${showId}`, '{"type":"product.pinned"}', `2026-12-03T17:00:00.000Z|${webhookId}`, { field: 'pin:prod1', value: '{"pinned":true}' }, undefined, undefined);
  // five new events and, in the same turn, a repeat of the first: one write for all six
  const { writes, result } = await socketWrites(() => fromSeparateCallbacks(6, (i) => (i < 5 ? pin(`s${i}`, `w${i}`) : pin('s0', 'w0'))));
  expect(writes).toBe(1);
  expect(result.map((r) => r.duplicate)).toEqual([false, false, false, false, false, true]);
  expect(result.every((r) => /^\d+-\d+$/.test(r.eventId))).toBe(true);
  expect(result[5]!.eventId).toBe(result[0]!.eventId);
  // each call was its own: the webhook-id w1 is claimed for s1 (another show is told so)
  expect((await pin('s9', 'w1')).holder).toBe('show:s1');
});

// A stored duplicate writes the show's sync-dispatch entry again (INGEST_SHOW_ONE_LUA): the first
// delivery's entry is gone once the dispatcher took it, and a partner resends an event when it is not
// sure it was taken, so the show's mirrors are looked at again. The script wrote it only for new events
// if the entry came after the duplicate check.
test("a stored duplicate writes the show's dispatch entry again; an id claimed for another show writes none", async () => {
  const keys = new Keys('wd' + randomBytes(3).toString('hex'));
  const shows = new ShowRepository(client, keys, 86_400, new SecretBox(randomBytes(32).toString('base64')));
  const pin = (showId: string, webhookId: string, requestId: string) =>
    shows.ingestOne('p1', showId, webhookId, `show:${showId}`, '{"type":"product.pinned"}', `2026-12-03T17:00:00.000Z|${webhookId}`, { field: 'pin:prod1', value: '{"pinned":true}' }, undefined, requestId);
  const entries = async (): Promise<string[]> => (await client.xrange(keys.syncDispatch(), '-', '+')).map(([, f]) => `${f[1]}/${f[3]}/${f[5]}`);
  expect((await pin('s1', 'w1', 'r1')).duplicate).toBe(false);
  expect((await pin('s1', 'w1', 'r2')).duplicate).toBe(true);
  expect((await pin('s2', 'w1', 'r3')).holder).toBe('show:s1');
  expect(await entries()).toEqual(['p1/s1/r1', 'p1/s1/r2']);
});

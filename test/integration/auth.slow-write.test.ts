/**
 * A key's answer does not wait for the write of its "last used" time: the key check reads the key (one
 * GET) and decides; the HSET of lastUsedAt is bookkeeping. It was awaited before the role check, so a
 * write Redis was slow to answer (the test Redis, like a production one with appendfsync always, fsyncs
 * every write: on a loaded machine's disk that can take longer than the API's 2 s command timeout) made
 * a viewer key's PUT /admin/queues/delivery/pause a 503 where the answer, 403, needed no write at all
 * (seen once in a fresh-clone CI, ops.api.test.ts). Here Redis holds every write for 4 s (CLIENT PAUSE
 * WRITE: reads are served, writes wait, as behind a slow fsync): the old code answered 503 after the
 * 2 s command timeout. Real redis-server, real HTTP.
 */
import { masters } from '../../src/store/redis.js';
import { loopStalls, ownTime } from '../helpers/loop-stalls.js';
import { serviceForFile, waitFor, type TestService } from '../helpers/service.js';

let svc: TestService;
serviceForFile((started) => (svc = started));

const newKey = async (role: string): Promise<{ id: string; key: string }> => {
  const r = await svc.api('/v1/api-keys', { json: { role } });
  expect(r.status).toBe(201);
  return (await r.json()) as { id: string; key: string };
};

/** Runs `fn` while Redis (every master of a cluster) holds every write (and script) for `ms`; reads are served. */
async function whileWritesHeld<T>(ms: number, fn: () => Promise<T>): Promise<T> {
  const admin = svc.redis.client();
  const ended = new Promise((resolve) => admin.once('end', resolve));
  try {
    await admin.ping(); // (a cluster client knows its masters once connected)
    for (const node of masters(admin)) await node.call('CLIENT', 'PAUSE', String(ms), 'WRITE');
    try {
      return await fn();
    } finally {
      for (const node of masters(admin)) await node.call('CLIENT', 'UNPAUSE');
    }
  } finally {
    await admin.quit();
    await ended;
  }
}

test("a viewer key never used before is refused (403) at once on /admin/queues while Redis is slow to write; its last use is still recorded", async () => {
  const viewer = await newKey('viewer');
  // One request: the API has one connection, and the commands after the held HSET on it wait behind it
  // (as every command waits behind a slow fsync): what is checked is that this answer does not.
  const stalls = loopStalls();
  const answer = await whileWritesHeld(4_000, async () => {
    const t0 = Date.now();
    const r = await fetch(`${svc.url}/admin/queues/api/queues/delivery/pause`, { method: 'PUT', headers: { authorization: `Bearer ${viewer.key}` } });
    return { status: r.status, type: r.headers.get('content-type'), body: (await r.json()) as unknown, ownMs: ownTime(t0, stalls) };
  }).finally(() => stalls.stop());
  expect(answer).toMatchObject({ status: 403, type: expect.stringMatching(/^application\/problem\+json/), body: { status: 403, detail: 'requires role admin' } });
  // Not after the held write either (awaited and its timeout caught, the answer would be a 403 after
  // 2 s): this process's own time, its event-loop stalls left out (a loaded machine's).
  expect(answer.ownMs).toBeLessThan(1_900);
  // The held write went through once Redis took writes again: the key's last use is listed.
  const used = await waitFor(async () => {
    const list = (await (await svc.api('/v1/api-keys')).json()) as { keys: { id: string; lastUsedAt: string | null }[] };
    return list.keys.find((k) => k.id === viewer.id)?.lastUsedAt;
  }, 10_000);
  expect(Date.parse(used)).toBeGreaterThan(0);
}, 30_000);

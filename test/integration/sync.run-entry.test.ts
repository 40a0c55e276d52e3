/**
 * A sync run that ends with its last save records its own timeline entry in that save's Lua step
 * (ShowRepository.saveMirrorFinal `runEntry`): after the mirror's entry, only when the save also ends
 * the run (the desired-state version is still the synced one, the lease is released), else nothing —
 * the run goes on and records itself when it does end. On a single Redis the same step asserts the
 * external-show index entry (the Lua it shares with ExternalShowIndex.assert). Real redis-server.
 */
import { newMirror } from '../../src/domain/mirror.js';
import { ExternalShowIndex } from '../../src/store/external-show.index.js';
import { LeaseLostError } from '../../src/store/intent.repository.js';
import { MirrorConflictError } from '../../src/store/show.repository.js';
import { testTopology } from '../helpers/redis-cluster.js';
import { startService, type TestService } from '../helpers/service.js';

let svc: TestService;

beforeAll(async () => {
  svc = await startService(); // no workers: the test plays the run itself
});
afterAll(async () => {
  await svc?.close();
});

const entry = (outcome: string): string => JSON.stringify({ kind: 'sync', targetId: 'rt', outcome, durationMs: 7 });
const mirrorEntry = JSON.stringify({ kind: 'mirror', targetId: 'rt', platform: 'youtube', state: 'live', externalId: null, pinned: [], lastError: null });

test('a last save that ends the run appends the run entry after the mirror entry and releases the lease', async () => {
  const { intents, shows, activity, redis, keys } = svc.rt;
  const [P, S, T] = ['rp', 'rs1', 'rt'];
  await redis.hset(keys.desired(P, S), 'v', '3');
  const got = await intents.acquire(P, S, T, 'tok-A', 30_000);
  if (!('lease' in got)) throw new Error('A should own the mirror');
  const mirror = newMirror(T, 'youtube');
  const r = await shows.saveMirrorFinal(P, S, mirror, got.lease, 3, mirrorEntry, entry('live'));
  expect(r).toEqual({ version: 3, runRecorded: true });
  expect(got.lease.released).toBe(true);
  expect(await redis.get(got.lease.key)).toBeNull();
  const timeline = await activity.list(P, S, 10); // newest first
  expect(timeline.map((a) => a.kind)).toEqual(['sync', 'mirror']);
  expect(timeline[0]).toMatchObject({ kind: 'sync', outcome: 'live', durationMs: 7 });
});

test('a last save that finds a newer version records no run entry and keeps the lease (the run goes on)', async () => {
  const { intents, shows, activity, redis, keys } = svc.rt;
  const [P, S, T] = ['rp', 'rs2', 'rt'];
  await redis.hset(keys.desired(P, S), 'v', '4');
  const got = await intents.acquire(P, S, T, 'tok-A', 30_000);
  if (!('lease' in got)) throw new Error('A should own the mirror');
  const mirror = newMirror(T, 'youtube');
  const r = await shows.saveMirrorFinal(P, S, mirror, got.lease, 3, mirrorEntry, entry('live'));
  expect(r).toEqual({ version: 4, runRecorded: false });
  expect(got.lease.released).toBeUndefined();
  expect(await redis.get(got.lease.key)).toBe('tok-A');
  expect((await activity.list(P, S, 10)).map((a) => a.kind)).toEqual(['mirror']);
});

test('without a run entry the last save records only what it was given', async () => {
  const { intents, shows, activity, redis, keys } = svc.rt;
  const [P, S, T] = ['rp', 'rs3', 'rt'];
  await redis.hset(keys.desired(P, S), 'v', '1');
  const got = await intents.acquire(P, S, T, 'tok-A', 30_000);
  if (!('lease' in got)) throw new Error('A should own the mirror');
  const r = await shows.saveMirrorFinal(P, S, newMirror(T, 'youtube'), got.lease, 1);
  expect(r).toEqual({ version: 1, runRecorded: false });
  expect(got.lease.released).toBe(true);
  expect(await activity.list(P, S, 10)).toEqual([]);
});

test("a last save by a run whose lease another run holds is refused and writes nothing; a lapsed lease is taken back", async () => {
  const { intents, shows, redis, keys } = svc.rt;
  const [P, S, T] = ['rp', 'rs5', 'rt'];
  await redis.hset(keys.desired(P, S), 'v', '2');
  const got = await intents.acquire(P, S, T, 'tok-A', 30_000);
  if (!('lease' in got)) throw new Error('A should own the mirror');
  await redis.set(got.lease.key, 'tok-B'); // a takeover after A stalled
  await expect(shows.saveMirrorFinal(P, S, newMirror(T, 'youtube'), got.lease, 2, mirrorEntry, entry('live'))).rejects.toBeInstanceOf(LeaseLostError);
  expect(await shows.getMirror(P, S, T)).toBeNull();
  expect(await redis.get(got.lease.key)).toBe('tok-B');
  // B's lease lapsed and nobody took it: A's save takes it back, saves, and (nothing new) ends it.
  await redis.del(got.lease.key);
  expect(await shows.saveMirrorFinal(P, S, newMirror(T, 'youtube'), got.lease, 2)).toEqual({ version: 2, runRecorded: false });
  expect((await shows.getMirror(P, S, T))?.rev).toBe(1);
  expect(got.lease.released).toBe(true);
});

// The index entry is in another slot: only a single Redis takes it in the save's step (a Cluster asserts it on its own).
const singleRedis = testTopology() === 'single' ? test : test.skip;

singleRedis('a last save given the external-show index entry writes it and counts the orders waiting for it, as ExternalShowIndex.assert does, also when the save is refused', async () => {
  const { intents, shows, redis, keys } = svc.rt;
  const index = new ExternalShowIndex(redis, keys);
  const [P, S, T] = ['rp', 'rs4', 'rt'];
  await redis.hset(keys.desired(P, S), 'v', '1');
  await index.addWaiting(T, 'ext-1', 'order-a');
  await index.addWaiting(T, 'ext-1', 'order-b');
  const got = await intents.acquire(P, S, T, 'tok-A', 30_000);
  if (!('lease' in got)) throw new Error('A should own the mirror');
  const mirror = newMirror(T, 'youtube');
  expect(await shows.saveMirrorFinal(P, S, mirror, got.lease, 1, undefined, undefined, { externalId: 'ext-1' })).toEqual({ version: 1, runRecorded: false, indexWaiting: 2 });
  expect(await index.get(T, 'ext-1')).toBe(S);
  // The same as the index's own step.
  expect(await index.assert(T, 'ext-1', S)).toBe(2);
  // A save whose revision check fails writes the entry all the same (a fact, whatever the mirror does).
  const again = await intents.acquire(P, S, T, 'tok-B', 30_000);
  if (!('lease' in again)) throw new Error('B should own the mirror');
  await expect(shows.saveMirrorFinal(P, S, { ...newMirror(T, 'youtube'), rev: 0 }, again.lease, 1, undefined, undefined, { externalId: 'ext-2' })).rejects.toBeInstanceOf(MirrorConflictError);
  expect(await index.get(T, 'ext-2')).toBe(S);
});

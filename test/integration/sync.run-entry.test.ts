/**
 * A sync run that ends with its last save records its own timeline entry in that save's Lua step
 * (ShowRepository.saveMirrorFinal `runEntry`): after the mirror's entry, only when the save also ends
 * the run (the desired-state version is still the synced one, the lease is released), else nothing —
 * the run goes on and records itself when it does end. Real redis-server.
 */
import { newMirror } from '../../src/domain/mirror.js';
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

/**
 * The save scripts' target guard compares incarnations: a sync run's save writes a mirror record only
 * while the target's record is of the incarnation that mirror is stamped with (none for a target made
 * before incarnations). Before, it asked only whether a record of the id was there, so a run of a
 * force-deleted target saved over the new target of the same id, and a record of a target without an
 * incarnation written then was taken by the new one as its own (ownMirror's createdAt rule). Refused:
 * TargetReplacedError, nothing written, deferred done records kept. Real Redis (a Cluster under
 * SYNDICAST_TEST_REDIS=cluster: the guard is the read before the save there).
 */
import { newMirror } from '../../src/domain/mirror.js';
import { TargetReplacedError } from '../../src/store/show.repository.js';
import type { MirrorLease } from '../../src/store/intent.repository.js';
import { startService, type TestService } from '../helpers/service.js';

const P = 'pinc';
let svc: TestService;
beforeAll(async () => {
  svc = await startService({ workers: false });
}, 60_000);
afterAll(async () => {
  await svc?.close();
});

/** Stores target `t`'s record (the fields the guard reads; `incarnation` left out when undefined). */
async function storeTarget(t: string, incarnation: string | undefined, name = 'YT'): Promise<void> {
  const { key, field } = svc.rt.partners.targetField(P, t);
  const now = new Date().toISOString();
  const record = { id: t, partnerId: P, platform: 'youtube', name, baseUrl: undefined, commissionRateBps: 0, enabled: true, pinDelayMs: 0, credentialsSealed: 'v1.x', ...(incarnation ? { incarnation } : {}), createdAt: now, updatedAt: now };
  await svc.rt.redis.hset(key, field, JSON.stringify(record));
}

/** A run's lease of (show, target) with the target guard SyncService sets. */
async function runLease(showId: string, t: string): Promise<MirrorLease> {
  const got = await svc.rt.intents.acquireAndRead(P, showId, t, `tok-${showId}`, 30_000);
  if (!('lease' in got)) throw new Error('lease not acquired');
  got.lease.target = svc.rt.partners.targetField(P, t);
  return got.lease;
}

test('a save stamped with another incarnation, or with none for a stamped target, is refused and writes nothing', async () => {
  await storeTarget('t1', 'inc_new');
  for (const [i, stamp] of [['a', 'inc_old'], ['b', undefined]] as const) {
    const lease = await runLease(`s1${i}`, 't1');
    const m = { ...newMirror('t1', 'youtube', stamp), state: 'ready' as const };
    await expect(svc.rt.shows.saveMirror(P, `s1${i}`, m, lease)).rejects.toBeInstanceOf(TargetReplacedError);
    await expect(svc.rt.shows.saveMirrorFinal(P, `s1${i}`, m, lease, 0)).rejects.toBeInstanceOf(TargetReplacedError);
    // With a deferred done record (a step made on the platform): kept for the run's next save or flush.
    const record = JSON.stringify({ status: 'done', owner: lease.token });
    const pending = [{ key: svc.rt.keys.intent(P, `s1${i}`, 't1', 'pin:p1'), record, recoverable: false, what: 'pin:p1' }];
    lease.pending = [...pending];
    await expect(svc.rt.shows.saveMirror(P, `s1${i}`, m, lease)).rejects.toBeInstanceOf(TargetReplacedError);
    expect(lease.pending).toEqual(pending);
    expect(await svc.rt.redis.get(pending[0]!.key)).toBeNull();
    expect(await svc.rt.shows.getMirror(P, `s1${i}`, 't1')).toBeNull();
    await expect(svc.rt.shows.checkTarget(P, 't1', stamp)).rejects.toBeInstanceOf(TargetReplacedError);
  }
  // Its own incarnation's: saved.
  const lease = await runLease('s1c', 't1');
  await svc.rt.shows.saveMirror(P, 's1c', newMirror('t1', 'youtube', 'inc_new'), lease);
  await svc.rt.shows.saveMirrorFinal(P, 's1c', (await svc.rt.shows.getMirror(P, 's1c', 't1'))!, lease, 0);
  expect(await svc.rt.shows.getMirror(P, 's1c', 't1')).toMatchObject({ incarnation: 'inc_new', rev: 2 });
  await expect(svc.rt.shows.checkTarget(P, 't1', 'inc_new')).resolves.toBeUndefined();
}, 30_000);

test('a target made before incarnations takes saves without one (a name quoting the key is only text), not a stamped one', async () => {
  await storeTarget('t2', undefined, 'quoting "incarnation":"inc_x" in its name');
  const lease = await runLease('s2', 't2');
  await svc.rt.shows.saveMirror(P, 's2', newMirror('t2', 'youtube'), lease);
  expect(await svc.rt.shows.getMirror(P, 's2', 't2')).toMatchObject({ rev: 1 });
  await expect(svc.rt.shows.checkTarget(P, 't2', undefined)).resolves.toBeUndefined();
  const stamped = { ...(await svc.rt.shows.getMirror(P, 's2', 't2'))!, incarnation: 'inc_x' };
  await expect(svc.rt.shows.saveMirror(P, 's2', stamped, lease)).rejects.toBeInstanceOf(TargetReplacedError);
  await expect(svc.rt.shows.checkTarget(P, 't2', 'inc_x')).rejects.toBeInstanceOf(TargetReplacedError);
  expect(await svc.rt.shows.getMirror(P, 's2', 't2')).toMatchObject({ rev: 1 });
  expect((await svc.rt.shows.getMirror(P, 's2', 't2'))!.incarnation).toBeUndefined();
}, 30_000);

test("a target made before incarnations, force-deleted and created again between a save's guard and its write (a Cluster's guard is a read before the save): the late record is not the new target's", async () => {
  await storeTarget('t3', undefined);
  const lease = await runLease('s3', 't3');
  const m = { ...newMirror('t3', 'youtube'), state: 'live' as const, remote: { externalId: 'old-broadcast', url: undefined, ingest: undefined, data: {} } };
  // The delete and the new create land right after the guard's read, which is the Cluster's guard (the
  // save script then checks nothing; forced on a single Redis, whose save script checks in the same
  // step): the save goes through, and its record must stay the old target's.
  const shows = svc.rt.shows;
  const check = shows.checkTarget.bind(shows);
  let replaced = 0;
  shows.checkTarget = async (...args) => {
    await check(...args);
    await new Promise((r) => setTimeout(r, 5));
    await storeTarget('t3', 'inc_re');
    replaced++;
  };
  const cluster = svc.rt.redis.isCluster;
  Object.defineProperty(svc.rt.redis, 'isCluster', { value: true, configurable: true, writable: true });
  try {
    await shows.saveMirror(P, 's3', m, lease);
  } finally {
    shows.checkTarget = check;
    Object.defineProperty(svc.rt.redis, 'isCluster', { value: cluster, configurable: true, writable: true });
  }
  expect(replaced).toBe(1);
  const owner = (await svc.rt.partners.getTarget(P, 't3'))!;
  expect(owner.incarnation).toBe('inc_re');
  const seen = await shows.getMirror(P, 's3', owner);
  expect(seen?.remote).toBeUndefined();
  expect(seen?.state ?? 'pending').toBe('pending');
}, 30_000);

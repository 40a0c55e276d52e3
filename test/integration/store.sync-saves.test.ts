/**
 * A sync run's reads and saves in the store, played by the test itself (no workers): the mirror's
 * compare-and-set and its well-formed text, a save refused for a deleted or replaced target, the last
 * save's run entry, a pin step waiting for its link's write, the snapshot and target records parsed once
 * per stored text. Once eight files (mirror-cas, mirror-well-formed, save-mirror.gone-pending,
 * save-mirror.incarnation, sync.run-entry, intent-before, sync.snapshot-read, sync.target-read), each
 * of which started its own redis-server and service for one to five cases (CI time: docs/testing.md).
 * One service for all, with startService's defaults (the api role and the sync dispatcher); each former
 * file is a `describe` of its own, with its own partner (p, pz, pinc, rp, bp, sn, tr) and reads only what
 * it made; what a block replaces on the service's objects (save-mirror.incarnation's checkTarget and
 * isCluster) it puts back before its case ends. Real redis-server.
 */
import { newMirror } from '../../src/domain/mirror.js';
import { MirrorConflictError, TargetGoneError, TargetReplacedError } from '../../src/store/show.repository.js';
import { loneSurrogateAt } from '../../src/lib/well-formed.js';
import { LeaseLostError, type MirrorLease } from '../../src/store/intent.repository.js';
import { ExternalShowIndex } from '../../src/store/external-show.index.js';
import type { DesiredShow } from '../../src/domain/desired-state.js';
import { createPartner, sampleShow, sendEvent, serviceForFile, showEvent, type TestService } from '../helpers/service.js';
import { testTopology } from '../helpers/redis-cluster.js';
import { CREDENTIALS } from '../helpers/platforms.js';

let svc: TestService;
serviceForFile((started) => (svc = started));

describe('mirror-cas', () => {
  /**
   * A sync and an operator action must not overwrite each other's mirror: saves are compare-and-set
   * on the mirror's revision (the benchmark saw operator links undone by a sync that had read the
   * mirror before the link).
   */

  test('a save based on an older read is refused; updateMirror re-reads and applies its change', async () => {
    const shows = svc.rt.shows;
    await shows.saveMirror('p', 's', newMirror('t', 'tiktok'));
    const syncRead = (await shows.getMirror('p', 's', 't'))!;
    const operatorRead = (await shows.getMirror('p', 's', 't'))!;

    operatorRead.remote = { externalId: 'room-1', url: undefined, ingest: undefined, data: { attach: '1' } };
    operatorRead.state = 'ready';
    await shows.saveMirror('p', 's', operatorRead);

    syncRead.state = 'action_required';
    await expect(shows.saveMirror('p', 's', syncRead)).rejects.toBeInstanceOf(MirrorConflictError);
    expect((await shows.getMirror('p', 's', 't'))!.remote?.externalId).toBe('room-1');

    // Concurrent read-modify-writes all land.
    await Promise.all(
      Array.from({ length: 10 }, () =>
        shows.updateMirror('p', 's', 't', () => newMirror('t', 'tiktok'), (m) => {
          m.generation += 1;
          return true;
        }),
      ),
    );
    expect((await shows.getMirror('p', 's', 't'))!.generation).toBe(10);
  });

  test("a saved mirror's text starts with its revision (the compare-and-set reads it there without decoding the record)", async () => {
    const { shows, redis, keys } = svc.rt;
    await shows.saveMirror('p', 'rh', newMirror('t', 'youtube'));
    const m = (await shows.getMirror('p', 'rh', 't'))!;
    m.remote = { externalId: 'b-1', url: undefined, ingest: undefined, data: { rev: '9' } }; // platform data naming a "rev" of its own
    await shows.saveMirror('p', 'rh', m);
    expect(await redis.get(keys.mirror('p', 'rh', 't'))).toMatch(/^\{"rev":2,/);
    const stale = { ...m, rev: 1 };
    await expect(shows.saveMirror('p', 'rh', stale)).rejects.toBeInstanceOf(MirrorConflictError);
    expect((await shows.getMirror('p', 'rh', 't'))!.rev).toBe(2);
  });

  test('a mirror stored by an earlier version (its revision anywhere in the text) is compared as before, and written revision first', async () => {
    const { shows, redis, keys } = svc.rt;
    const legacy = { ...newMirror('t', 'youtube'), remote: { externalId: 'b-2', data: { note: '"rev":5' } }, rev: 4 };
    await redis.set(keys.mirror('p', 'rl', 't'), JSON.stringify(legacy));
    const stale = (await shows.getMirror('p', 'rl', 't'))!;
    stale.rev = 3;
    await expect(shows.saveMirror('p', 'rl', stale)).rejects.toBeInstanceOf(MirrorConflictError);
    const read = (await shows.getMirror('p', 'rl', 't'))!;
    read.state = 'ready';
    await shows.saveMirror('p', 'rl', read);
    const raw = (await redis.get(keys.mirror('p', 'rl', 't')))!;
    expect(raw).toMatch(/^\{"rev":5,/);
    expect(JSON.parse(raw)).toMatchObject({ state: 'ready', rev: 5 });
  });
});

describe('mirror-well-formed', () => {
  /**
   * A lone UTF-16 surrogate in text a PLATFORM answers (show id, url, data, an error message that ends
   * up in lastError) must not break the mirror record: Redis Lua's cjson refuses to decode it ("invalid
   * unicode escape code"), and every later save of the mirror (the compare-and-set reads the stored
   * record in Lua) failed, so the show's sync failed for good. Partner input with one is refused at the
   * edge (events.input.test.ts); a platform's answer is stored well-formed (U+FFFD). Real redis-server.
   */

  test('a mirror holding platform text with lone surrogates saves again and again, and reads back well-formed', async () => {
    const shows = svc.rt.shows;
    const m = newMirror('t1', 'bambuser');
    await shows.saveMirror('p', 'ws1', m);
    m.state = 'ready';
    m.remote = { externalId: 'show-\ud800', url: 'https://platform.example/\udc00x', ingest: undefined, data: { title: 'Live \ud83d', ['k\udfff']: 'v' } };
    m.lastError = 'retrying in 2 s: bambuser: 400 bad title \ud800';
    await shows.saveMirror('p', 'ws1', m);
    // The next save reads the stored record in Lua: it used to throw "invalid unicode escape code".
    m.state = 'live';
    await shows.saveMirror('p', 'ws1', m);
    await shows.updateMirror('p', 'ws1', 't1', () => newMirror('t1', 'bambuser'), (x) => {
      x.generation += 1;
      return true;
    });
    const got = (await shows.getMirror('p', 'ws1', 't1'))!;
    expect(got).toMatchObject({ state: 'live', generation: 1, lastError: 'retrying in 2 s: bambuser: 400 bad title \ufffd' });
    expect(got.remote).toMatchObject({ externalId: 'show-\ufffd', url: 'https://platform.example/\ufffdx', data: { title: 'Live \ufffd', ['k\ufffd']: 'v' } });
    const raw = (await svc.rt.redis.get(svc.rt.keys.mirror('p', 'ws1', 't1')))!;
    expect(loneSurrogateAt(JSON.parse(raw))).toBeUndefined();
    expect(raw).not.toMatch(/\\ud[89a-f]/i);
  });

  test('a record stored with one before this fix is replaced by the next save instead of failing it for good', async () => {
    const shows = svc.rt.shows;
    await shows.saveMirror('p', 'ws2', newMirror('t1', 'youtube'));
    const read = (await shows.getMirror('p', 'ws2', 't1'))!;
    // What an earlier version wrote: JSON.stringify keeps a lone surrogate as its escape.
    const broken = JSON.stringify({ ...read, remote: { externalId: 'x\ud800', url: undefined, ingest: undefined, data: {} } });
    expect(broken).toMatch(/\\ud800/);
    await svc.rt.redis.set(svc.rt.keys.mirror('p', 'ws2', 't1'), broken);
    const stuck = (await shows.getMirror('p', 'ws2', 't1'))!;
    stuck.state = 'ready';
    await shows.saveMirror('p', 'ws2', stuck);
    expect((await shows.getMirror('p', 'ws2', 't1'))!).toMatchObject({ state: 'ready', remote: { externalId: 'x\ufffd' } });
    // The revision check still holds for such a record: a save from an older read is refused.
    await svc.rt.redis.set(svc.rt.keys.mirror('p', 'ws2', 't1'), JSON.stringify({ ...stuck, rev: 7, remote: { externalId: 'y\ud800', url: undefined, ingest: undefined, data: {} } }));
    await expect(shows.saveMirror('p', 'ws2', { ...stuck, rev: 3 })).rejects.toThrow(/changed since it was read/);
  });
});

describe('save-mirror.gone-pending', () => {
  /**
   * Review 2026-12-02: a save refused because the run's target was deleted (-2) wrote nothing, yet it
   * dropped the run's deferred done records (`lease.pending`: steps already made on the platform), so
   * the run's flush found nothing to write and the intent stayed `started`: a target re-created with
   * the same id could repeat the call. They stay on the lease for the flush now, as after a lost lease.
   */

  test('a save refused for a deleted target keeps the deferred done records for the flush', async () => {
    const { intents, shows, keys, partners } = svc.rt;
    const got = await intents.acquireAndRead('pz', 'sz', 'tz', 'tok-1', 30_000);
    if (!('lease' in got)) throw new Error('lease not acquired');
    const { lease } = got;
    const record = JSON.stringify({ status: 'done', owner: 'tok-1' });
    lease.pending = [{ key: keys.intent('pz', 'sz', 'tz', 'pin:p1'), record, recoverable: false, what: 'pin:p1' }];
    lease.target = partners.targetField('pz', 'tz'); // no such target: deleted during the run
    const err = await shows.saveMirror('pz', 'sz', newMirror('tz', 'youtube'), lease).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TargetGoneError);
    expect(lease.pending).toEqual([{ key: keys.intent('pz', 'sz', 'tz', 'pin:p1'), record, recoverable: false, what: 'pin:p1' }]);
  }, 30_000);
});

describe('save-mirror.incarnation', () => {
  /**
   * The save scripts' target guard compares incarnations: a sync run's save writes a mirror record only
   * while the target's record is of the incarnation that mirror is stamped with (none for a target made
   * before incarnations). Before, it asked only whether a record of the id was there, so a run of a
   * force-deleted target saved over the new target of the same id, and a record of a target without an
   * incarnation written then was taken by the new one as its own (ownMirror's createdAt rule). Refused:
   * TargetReplacedError, nothing written, deferred done records kept. Real Redis (a Cluster under
   * SYNDICAST_TEST_REDIS=cluster: the guard is the read before the save there).
   */
  const P = 'pinc';

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
});

describe('sync.run-entry', () => {
  /**
   * A sync run that ends with its last save records its own timeline entry in that save's Lua step
   * (ShowRepository.saveMirrorFinal `runEntry`): after the mirror's entry, only when the save also ends
   * the run (the desired-state version is still the synced one, the lease is released), else nothing —
   * the run goes on and records itself when it does end. On a single Redis the same step asserts the
   * external-show index entry (the Lua it shares with ExternalShowIndex.assert). Real redis-server.
   */


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
});

describe('intent-before', () => {
  /**
   * A pin step waits for its tracked link's write (IntentRepository.scoped `before`, sent in the same
   * event-loop turn as the step's start by SyncService.syncPins): the step neither recovers nor runs
   * before that write is done, and a failed write fails the step with nothing sent. Real redis-server.
   */


  test('the step runs only after the link write it waits for is done, and it is in Redis by then', async () => {
    const { intents, links } = svc.rt;
    const [P, S, T] = ['bp', 'bs1', 'bt'];
    const got = await intents.acquire(P, S, T, 'tok-A', 30_000);
    if (!('lease' in got)) throw new Error('A should own the mirror');
    const sent = links.ensureSent({ partnerId: P, showId: S, targetId: T, platform: 'youtube', productId: 'p1', url: 'https://shop.example.com/p1' });
    const code = sent.url.slice(sent.url.lastIndexOf('/') + 1);
    const order: string[] = [];
    const written = sent.written.then(() => {
      order.push('link written');
    });
    const result = await intents.scoped(P, S, T, 'g0:pin:p1:1', got.lease, { before: () => written })('message', async () => {
      order.push('post');
      expect(await svc.rt.redis.get(svc.rt.keys.link(code))).not.toBeNull();
      return { id: 'm1' };
    });
    expect(result).toEqual({ id: 'm1' });
    expect(order).toEqual(['link written', 'post']);
  });

  test('a failed write fails the step before it runs or recovers: nothing is sent, the step stays retryable', async () => {
    const { intents } = svc.rt;
    const [P, S, T] = ['bp', 'bs2', 'bt'];
    const got = await intents.acquire(P, S, T, 'tok-A', 30_000);
    if (!('lease' in got)) throw new Error('A should own the mirror');
    const calls: string[] = [];
    const once = intents.scoped(P, S, T, 'g0:pin:p1:1', got.lease, { before: () => Promise.reject(new Error('link write refused')) });
    await expect(
      once(
        'message',
        async () => {
          calls.push('post');
          return { id: 'm1' };
        },
        async () => {
          calls.push('recover');
          return null;
        },
      ),
    ).rejects.toThrow('link write refused');
    expect(calls).toEqual([]);
    // A later attempt (the write works now) runs the step; it looks for an earlier attempt's object first.
    const again = await intents.scoped(P, S, T, 'g0:pin:p1:1', got.lease)(
      'message',
      async () => {
        calls.push('post');
        return { id: 'm2' };
      },
      async () => {
        calls.push('recover');
        return null;
      },
    );
    expect(again).toEqual({ id: 'm2' });
    expect(calls).toEqual(['recover', 'post']);
  });
});

describe('sync.snapshot-read', () => {
  /**
   * A sync run's first read parses the show's snapshot once per stored text (ShowRepository
   * desiredFromFlat: every run of a live show reads the same snapshot until the partner sends a new one).
   * A new snapshot is new text: the next read sees it at once; the shared parse is frozen, so no run can
   * change what the next one reads; pins and product updates (registers of their own) are applied over
   * it on every read. Real redis-server, snapshots ingested through the API.
   */
  let secret: string;
  beforeAll(async () => {
    secret = await createPartner(svc, 'sn');
  }, 60_000);

  /** What a run's lease step reads: the desired hash, flat (HGETALL inside Lua). */
  const firstRead = async (showId: string): Promise<DesiredShow | null> => {
    const flat = (await svc.rt.redis.call('HGETALL', svc.rt.keys.desired('sn', showId))) as string[];
    return svc.rt.shows.desiredFromFlat(showId, flat);
  };
  const send = async (event: unknown): Promise<void> => {
    expect((await sendEvent(svc, 'sn', secret, event)).status).toBe(202);
  };

  test('a new snapshot is read at once; pins and product updates apply over a reused parse; the parse cannot be changed', async () => {
    await send(showEvent('show.scheduled', sampleShow('sn-1'), '2026-11-24T17:00:00Z'));
    const a = (await firstRead('sn-1'))!;
    const b = (await firstRead('sn-1'))!;
    expect(b.products.get('p1')).toBe(a.products.get('p1')); // the same text: one parse, shared
    expect(() => {
      (a.products.get('p1') as { title: string }).title = 'changed by a run';
    }).toThrow(TypeError);
    expect(() => {
      (a.products.get('p1')!.price as { amount: number }).amount = 1;
    }).toThrow(TypeError);
    expect((await firstRead('sn-1'))!.products.get('p1')).toMatchObject({ title: 'Lip Oil', price: { amount: 1800, currency: 'USD' } });

    // A pin and a product update are registers of their own: the snapshot's parse is reused, both are seen.
    await send(showEvent('show.live', sampleShow('sn-1', { state: 'live' }), '2026-11-24T17:01:00Z'));
    const liveA = (await firstRead('sn-1'))!;
    await send({ type: 'product.pinned', occurredAt: '2026-11-24T17:02:00Z', data: { showId: 'sn-1', productId: 'p2' } });
    await send({ type: 'product.updated', occurredAt: '2026-11-24T17:02:30Z', data: { showId: 'sn-1', product: { id: 'p1', title: 'Lip Oil XL', price: { amount: 2100, currency: 'USD' }, url: 'https://shop.example.com/p1' } } });
    const live = (await firstRead('sn-1'))!;
    expect(live.state).toBe('live');
    expect([...live.pinned]).toEqual(['p2']);
    expect(live.products.get('p2')).toBe(liveA.products.get('p2'));
    expect(live.products.get('p1')).toMatchObject({ title: 'Lip Oil XL', price: { amount: 2100 } });
    expect(liveA.products.get('p1')).toMatchObject({ title: 'Lip Oil', price: { amount: 1800 } }); // an earlier read keeps what it read

    // A new snapshot (another price, a product more) is new text: read as it is now.
    const products = [
      { id: 'p1', title: 'Lip Oil', price: { amount: 1500, currency: 'USD' }, url: 'https://shop.example.com/p1' },
      { id: 'p3', title: 'Mascara', price: { amount: 900, currency: 'EUR' }, url: 'https://shop.example.com/p3' },
    ];
    await send(showEvent('show.updated', sampleShow('sn-1', { state: 'live', title: 'Show sn-1, later', products, pinnedProductIds: ['p3'] }), '2026-11-24T17:03:00Z'));
    const later = (await firstRead('sn-1'))!;
    expect(later.title).toBe('Show sn-1, later');
    expect(later.products.get('p1')).toMatchObject({ title: 'Lip Oil', price: { amount: 1500, currency: 'USD' } }); // the newer snapshot wins over the update
    expect(later.products.get('p3')).toMatchObject({ title: 'Mascara' });
    expect(later.products.has('p2')).toBe(false);
    expect([...later.pinned]).toEqual(['p3']); // the newer snapshot decides the pins
  });

  test('the parses kept for reuse are bounded in characters of text, not only in shows', async () => {
    // 600 shows whose snapshots are each just under the per-text limit: 9,000,000 characters in all,
    // over the memo's 8,000,000 (about 22 MB of heap in parses; 4,096 such texts took ≈ 175 MB).
    const shows = svc.rt.shows as unknown as { snapshots: Map<string, { raw: string }> };
    const text = (i: number): string => JSON.stringify({ ...sampleShow(`big-${i}`), title: `${i} `.padEnd(15_000, 'x') });
    let most = 0;
    for (let i = 0; i < 600; i++) {
      const desired = svc.rt.shows.desiredFromFlat(`big-${i}`, ['snap', text(i), 'snap@', '1']);
      expect(desired!.title.startsWith(`${i} `)).toBe(true);
      let chars = 0;
      for (const { raw } of shows.snapshots.values()) chars += raw.length;
      most = Math.max(most, chars);
    }
    expect(most).toBeGreaterThan(7_000_000); // the memo was used
    expect(most).toBeLessThanOrEqual(8_000_000);
    // The same text again is still one shared parse.
    const again = svc.rt.shows.desiredFromFlat('big-599', ['snap', text(599), 'snap@', '1'])!;
    expect(svc.rt.shows.desiredFromFlat('big-599', ['snap', text(599), 'snap@', '1'])!.products.get('p1')).toBe(again.products.get('p1'));
  });
});

describe('sync.target-read', () => {
  /**
   * A sync run parses the target record it read with its lease once per stored text
   * (SyncService.targetRead: runs of every show on a target read the same record). A changed record is
   * a new text: the next run sees the change at once (disabled: nothing done; enabled again: the run
   * goes on). Real redis-server; no simulator (an enabled target's run meets a refused connection and
   * waits to retry, a disabled one's does nothing).
   */
  let secret: string;
  beforeAll(async () => {
    secret = await createPartner(svc, 'tr');
    const r = await svc.api('/v1/partners/tr/targets?verify=false', {
      json: { id: 'tr-yt', platform: 'youtube', name: 'yt', credentials: CREDENTIALS.youtube, baseUrl: 'http://127.0.0.1:9/youtube', commissionRateBps: 500 },
    });
    expect(r.status).toBe(201);
    for (const id of ['tr-s1', 'tr-s2', 'tr-s3']) {
      expect((await sendEvent(svc, 'tr', secret, showEvent('show.scheduled', sampleShow(id), '2026-11-24T17:00:00Z'))).status).toBe(202);
    }
  }, 60_000);

  const patch = async (body: unknown): Promise<void> => {
    const r = await svc.api('/v1/partners/tr/targets/tr-yt?verify=false', { method: 'PATCH', json: body });
    expect(r.status).toBe(200);
  };
  const run = (showId: string) => svc.rt.syncService.sync({ partnerId: 'tr', showId, targetId: 'tr-yt' });

  test('a target disabled after a run is seen disabled by the next one, and enabled again by the one after', async () => {
    expect(await run('tr-s1')).toMatchObject({ kind: 'delay' }); // enabled: the platform call is refused, retried later
    await patch({ enabled: false });
    expect(await run('tr-s2')).toEqual({ kind: 'done', state: 'none' });
    await patch({ enabled: true });
    expect(await run('tr-s3')).toMatchObject({ kind: 'delay' });
  });
});

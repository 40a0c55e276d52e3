/**
 * The intent records' owner checks and their deferred done records, played by the test itself (no
 * workers). Once two files (intent-owner-head, intent-deferred), each of which started its own
 * redis-server and service (CI time: docs/testing.md). One service for both, on startService's
 * defaults; each former file is a `describe` of its own, with its own partners (oh…, dp) and mirrors.
 * Real redis-server.
 */
import type { Redis } from 'ioredis';
import { newMirror } from '../../src/domain/mirror.js';
import { IntentCorruptError, IntentRepository, LeaseLostError } from '../../src/store/intent.repository.js';
import { MirrorConflictError } from '../../src/store/show.repository.js';
import { serviceForFile, waitFor, type TestService } from '../helpers/service.js';

let svc: TestService;
serviceForFile((started) => (svc = started)); // no workers: the tests play the runs themselves

describe('intent-owner-head', () => {
  /**
   * The intent scripts read a record's owner from its head (`{"status":…,"owner":"…",`: OWNED_BY_LUA in
   * src/store/intent.repository.ts) and write a new step's started record by appending its `until` to
   * the text the run sent, without cjson. Real redis-server: the started record is still a JSON record
   * with every field; an owner whose text JSON escapes is compared decoded; a record in any other field
   * order (as cjson writes one) and an owner that only starts like the run's token are refused as before.
   */
  const ATTEMPT_MS = 5_000;

  async function owned(p: string, s: string, t: string, token: string) {
    const intents = new IntentRepository(svc.rt.redis, svc.rt.keys, svc.rt.box, { attemptMs: ATTEMPT_MS, settleMs: 500 });
    const got = await intents.acquire(p, s, t, token, 30_000);
    if (!('lease' in got)) throw new Error('the run should own the mirror');
    await svc.rt.shows.saveMirror(p, s, newMirror(t, 'youtube'), got.lease);
    return { intents, lease: got.lease, raw: (scopeStep: string) => svc.rt.redis.get(svc.rt.keys.intent(p, s, t, scopeStep)) };
  }

  test.each(['tok-plain', 'tok "quoted" \\ back\\slash', 'tök-ünïcode'])('a new step\'s started record is JSON with its until, and the step completes for its owner (%j)', async (token) => {
    const [P, S, T] = ['oh', `s-${token.length}`, 'ot'];
    const { intents, lease, raw } = await owned(P, S, T, token);
    let during: string | null = null;
    const t0 = Date.now();
    // Recorded at once (its own INTENT_COMPLETE call)
    await intents.scoped(P, S, T, 'g0:create', lease)('broadcast', async () => {
      during = await raw('g0:create:broadcast');
      return { id: 'b1' };
    });
    const started = JSON.parse(during!) as Record<string, unknown>;
    expect(started).toMatchObject({ status: 'started', owner: token, startedAt: expect.any(String) });
    expect(started['until']).toEqual(expect.any(Number));
    expect(Math.abs((started['until'] as number) - (t0 + ATTEMPT_MS))).toBeLessThan(2_000);
    expect(JSON.parse((await raw('g0:create:broadcast'))!)).toMatchObject({ status: 'done', owner: token });
    // Deferred: written by the next mirror save (SAVE_MIRROR_COMPLETING)
    await intents.scoped(P, S, T, 'g0:pin:p1:1', lease, { deferComplete: true })('message', async () => ({ id: 'm1' }), undefined, { resultInClear: true });
    const mirror = (await svc.rt.shows.getMirror(P, S, T))!;
    await svc.rt.shows.saveMirror(P, S, mirror, lease);
    expect(JSON.parse((await raw('g0:pin:p1:1:message'))!)).toMatchObject({ status: 'done', owner: token, result: { id: 'm1' } });
  });

  test.each([
    ['another run, cjson field order', (now: number) => JSON.stringify({ until: now + 60_000, owner: 'tok-B', startedAt: new Date(now).toISOString(), status: 'started' })],
    ['another run, head order', (now: number) => JSON.stringify({ status: 'started', owner: 'tok-B', startedAt: new Date(now).toISOString(), until: now + 60_000 })],
    ['a longer token that starts like the run\'s', (now: number) => JSON.stringify({ status: 'started', owner: 'tok-AX', startedAt: new Date(now).toISOString(), until: now + 60_000 })],
    ['an escaped owner that decodes to another token', (now: number) => JSON.stringify({ status: 'started', owner: 'tok-A"', startedAt: new Date(now).toISOString(), until: now + 60_000 })],
    // Owner x\ (JSON text x\\) and the run's token x\\: the text equals the token, the owner does not.
    ['an owner whose JSON text is the run\'s token', (now: number) => JSON.stringify({ status: 'started', owner: 'x\\', startedAt: new Date(now).toISOString(), until: now + 60_000 }), 'x\\\\'],
  ])('a step taken over meanwhile (%s) is not recorded done by the run, at once or by its save', async (_what, record, token = 'tok-A') => {
    for (const deferComplete of [false, true]) {
      const [P, S, T] = ['oh2', `s-${_what.length}-${deferComplete}`, 'ot'];
      const { intents, lease, raw } = await owned(P, S, T, token);
      const key = svc.rt.keys.intent(P, S, T, 'g0:pin:p1:1:message');
      const step = intents.scoped(P, S, T, 'g0:pin:p1:1', lease, { deferComplete })('message', async () => {
        await svc.rt.redis.set(key, record(Date.now()));
        return { id: 'from-A' };
      });
      if (!deferComplete) {
        await expect(step).rejects.toBeInstanceOf(LeaseLostError);
      } else {
        await step;
        await expect(svc.rt.shows.saveMirror(P, S, (await svc.rt.shows.getMirror(P, S, T))!, lease)).rejects.toBeInstanceOf(LeaseLostError);
      }
      expect(JSON.parse((await raw('g0:pin:p1:1:message'))!)).toMatchObject({ status: 'started' });
    }
  });

  test('a record this run owns in cjson field order is still its own', async () => {
    const [P, S, T] = ['oh3', 's1', 'ot'];
    const { intents, lease, raw } = await owned(P, S, T, 'tok-A');
    const key = svc.rt.keys.intent(P, S, T, 'g0:pin:p1:1:message');
    await intents.scoped(P, S, T, 'g0:pin:p1:1', lease)('message', async () => {
      await svc.rt.redis.set(key, JSON.stringify({ until: Date.now() + 60_000, owner: 'tok-A', status: 'started', startedAt: new Date().toISOString() }));
      return { id: 'm2' };
    });
    expect(JSON.parse((await raw('g0:pin:p1:1:message'))!)).toMatchObject({ status: 'done', owner: 'tok-A' });
  });

  // Corrupt records whose head is the run's own: `{"status":…,"owner":"<the run's token>",` then
  // anything but the rest of a record (a damaged AOF, a hand edit). They end in '}', as a whole record does.
  const CORRUPT = [
    ['a done record whose body is garbage', '{"status":"done","owner":"tok-A",#garbage#}'],
    ['a started record cut short and closed', '{"status":"started","owner":"tok-A","startedAt":"2026-12-02T13:00:00.000Z","until":17}'.slice(0, 60) + '}'],
    ['a done record missing its closing quote', '{"status":"done","owner":"tok-A","resultSealed":"abc}'],
    // JSON that decodes but is no intent record (review of 7cdd4c5: a step without a lookup ran again)
    ['an empty JSON array', '[]'],
    ['an empty JSON object', '{}'],
    ['JSON with no status, owner only', '{"owner":"tok-A"}'],
  ] as const;

  // A done record the start script reads (its cjson takes a hex number, nan, inf) and JSON.parse does
  // not: the script said done, and the bare JSON.parse of the result threw a SyntaxError (an internal
  // error, retried for ever), where recorded() said IntentCorruptError (review). Its own row here: a
  // record that turns so while its step runs (below) is one the complete scripts read, another matter.
  const CJSON_ONLY = ['a done record only cjson reads (a hex number)', '{"status":"done","owner":"tok-A","result":0x10}'] as const;

  test.each([...CORRUPT, CJSON_ONLY])('a step whose record is unreadable (%s) is not run again: the error names it, the record stays; a look (recorded) says so too', async (_what, corrupt) => {
    const [P, S, T] = ['oh4', `s-${_what.length}`, 'ot'];
    const { intents, lease, raw } = await owned(P, S, T, 'tok-A');
    await svc.rt.redis.set(svc.rt.keys.intent(P, S, T, 'g0:pin:p1:1:message'), corrupt);
    for (const recover of [undefined, async () => ({ id: 'found' })]) {
      let ran = 0;
      const step = intents.scoped(P, S, T, 'g0:pin:p1:1', lease)('message', async () => ({ id: `posted-${++ran}` }), recover);
      await expect(step).rejects.toBeInstanceOf(IntentCorruptError);
      await expect(step).rejects.toMatchObject({ kind: 'permanent', reason: 'intent_corrupt', message: expect.stringContaining('g0:pin:p1:1:message') });
      expect(ran).toBe(0);
      expect(await raw('g0:pin:p1:1:message')).toBe(corrupt);
    }
    await expect(intents.recorded(P, S, T, 'g0:pin:p1:1', lease)('message')).rejects.toBeInstanceOf(IntentCorruptError);
  });

  // The deferred record is written by the run's next save (saveMirror) or its last one (saveMirrorFinal).
  // Either says IntentCorruptError, as the record's own write does: before, both said LeaseLostError
  // (the run stopped as if another had taken over, and the error surfaced in the run after the lease lapsed).
  test.each(CORRUPT)('a step whose record turned unreadable while it ran (%s) is not recorded done over it, at once or by a save, and the error says so', async (_what, corrupt) => {
    for (const how of ['at once', 'saveMirror', 'saveMirrorFinal', 'flush'] as const) {
      const [P, S, T] = ['oh5', `s-${_what.length}-${how}`, 'ot'];
      const { intents, lease, raw } = await owned(P, S, T, 'tok-A');
      const key = svc.rt.keys.intent(P, S, T, 'g0:pin:p1:1:message');
      const made = { reason: 'intent_corrupt', message: expect.stringContaining('this run made it on the platform') };
      // A second step, deferred before it and readable: written by the same save.
      const other = svc.rt.keys.intent(P, S, T, 'g0:pin:p0:1:message');
      if (how !== 'at once') await intents.scoped(P, S, T, 'g0:pin:p0:1', lease, { deferComplete: true })('message', async () => ({ id: 'p0' }));
      const step = intents.scoped(P, S, T, 'g0:pin:p1:1', lease, { deferComplete: how !== 'at once' })('message', async () => {
        await svc.rt.redis.set(key, corrupt);
        return { id: 'from-A' };
      });
      if (how === 'at once') {
        await expect(step).rejects.toMatchObject(made);
      } else {
        await step;
        const mirror = (await svc.rt.shows.getMirror(P, S, T))!;
        const save =
          how === 'saveMirror'
            ? svc.rt.shows.saveMirror(P, S, mirror, lease)
            : how === 'saveMirrorFinal'
              ? svc.rt.shows.saveMirrorFinal(P, S, mirror, lease, 0)
              : intents.flush(lease); // the run's error path and its next step write it on their own
        await expect(save).rejects.toBeInstanceOf(IntentCorruptError);
        await expect(save).rejects.toMatchObject({ ...made, message: expect.stringContaining(key) });
        // The error names the step, as the record's own write does (before: the Redis key twice, "the
        // record of step <key>", in the mirror's lastError).
        await expect(save).rejects.toMatchObject({ message: expect.stringContaining(`the record of step g0:pin:p1:1:message is unreadable (Redis key ${key})`) });
        expect(JSON.parse((await svc.rt.redis.get(other))!)).toMatchObject({ status: 'done', owner: 'tok-A' });
        expect(lease.pending).toBeUndefined(); // nothing left to write: the next save (the mirror failed) goes through
        expect(lease.lost).toBeFalsy();
        await svc.rt.shows.saveMirror(P, S, mirror, lease);
      }
      expect(await raw('g0:pin:p1:1:message')).toBe(corrupt);
    }
  });
});

describe('intent-deferred', () => {
  /**
   * A pin's intent `done` record rides on the mirror save that follows the call (IntentRepository.scoped
   * with deferComplete, ShowRepository.saveMirror): the save writes it in the same Lua step, owner-
   * checked like a completion of its own, also when the mirror's revision check then fails; a run that
   * lost the step to a takeover records nothing and saves nothing. Real redis-server.
   */
  async function intent(p: string, s: string, t: string, scopeStep: string): Promise<{ status: string; owner: string; result?: unknown } | null> {
    const raw = await svc.rt.redis.get(svc.rt.keys.intent(p, s, t, scopeStep));
    if (!raw) return null;
    // Results are sealed at rest (they can carry stream keys); open them to compare.
    const { resultSealed, ...rec } = JSON.parse(raw) as { status: string; owner: string; resultSealed?: string };
    return resultSealed === undefined ? rec : { ...rec, result: JSON.parse(svc.rt.box.decrypt(resultSealed)) as unknown };
  }

  test('the done record is written by the next mirror save, together with the mirror', async () => {
    const { intents, shows } = svc.rt;
    const [P, S, T] = ['dp', 'ds1', 'dt'];
    const got = await intents.acquire(P, S, T, 'tok-A', 30_000);
    if (!('lease' in got)) throw new Error('A should own the mirror');
    const mirror = newMirror(T, 'youtube');
    await shows.saveMirror(P, S, mirror, got.lease);
    const calls: string[] = [];
    const result = await intents.scoped(P, S, T, 'g0:pin:p1:1', got.lease, { deferComplete: true })('message', async () => {
      calls.push('post');
      return { id: 'm1' };
    });
    expect(result).toEqual({ id: 'm1' });
    // Not yet: the record waits for the save.
    expect(await intent(P, S, T, 'g0:pin:p1:1:message')).toMatchObject({ status: 'started', owner: 'tok-A' });
    mirror.lastError = 'pinned';
    await shows.saveMirror(P, S, mirror, got.lease);
    expect(await intent(P, S, T, 'g0:pin:p1:1:message')).toMatchObject({ status: 'done', owner: 'tok-A', result: { id: 'm1' } });
    expect((await shows.getMirror(P, S, T))?.lastError).toBe('pinned');
    expect(got.lease.pending).toBeUndefined();
    // A second run of the step returns the recorded result and calls nothing.
    expect(await intents.scoped(P, S, T, 'g0:pin:p1:1', got.lease)('message', async () => ({ id: 'again' }))).toEqual({ id: 'm1' });
    expect(calls).toEqual(['post']);
  });

  test('a save whose revision check fails still records the done step (it happened), then reports the conflict', async () => {
    const { intents, shows } = svc.rt;
    const [P, S, T] = ['dp', 'ds2', 'dt'];
    const got = await intents.acquire(P, S, T, 'tok-A', 30_000);
    if (!('lease' in got)) throw new Error('A should own the mirror');
    const mirror = newMirror(T, 'youtube');
    await shows.saveMirror(P, S, mirror, got.lease);
    const stale = { ...mirror, rev: 0 };
    await intents.scoped(P, S, T, 'g0:pin:p1:1', got.lease, { deferComplete: true })('message', async () => ({ id: 'm2' }));
    await expect(shows.saveMirror(P, S, stale, got.lease)).rejects.toBeInstanceOf(MirrorConflictError);
    expect(await intent(P, S, T, 'g0:pin:p1:1:message')).toMatchObject({ status: 'done', result: { id: 'm2' } });
  });

  test('a run whose step was taken over records nothing and saves nothing', async () => {
    const { shows } = svc.rt;
    // Short attempt and settle times: a takeover starts A's step again only once A's attempt can no
    // longer reach the platform (intent 'until' + settle), then owns it.
    const intents = new IntentRepository(svc.rt.redis, svc.rt.keys, svc.rt.box, { attemptMs: 1_000, settleMs: 500 });
    const [P, S, T] = ['dp', 'ds3', 'dt'];
    const a = await intents.acquire(P, S, T, 'tok-A', 300);
    if (!('lease' in a)) throw new Error('A should own the mirror');
    const mirrorA = newMirror(T, 'youtube');
    await shows.saveMirror(P, S, mirrorA, a.lease);
    await intents.scoped(P, S, T, 'g0:pin:p1:1', a.lease, { deferComplete: true })('message', async () => ({ id: 'from-A' }));
    // A stalls past its lease; B takes the mirror over and starts the same step itself.
    await waitFor(async () => (await svc.rt.redis.exists(svc.rt.keys.mirrorLease(P, S, T))) === 0, 5_000, 20);
    const b = await intents.acquire(P, S, T, 'tok-B', 30_000);
    if (!('lease' in b)) throw new Error('B should own the mirror');
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const startB = (): Promise<{ id: string }> =>
      intents.scoped(P, S, T, 'g0:pin:p1:1', b.lease)('message', async () => {
        await held;
        return { id: 'from-B' };
      });
    // Until A's attempt has settled, B's start is refused with a settling delay (and does not run).
    await expect(startB()).rejects.toMatchObject({ reason: 'intent_settling' });
    await new Promise((r) => setTimeout(r, 1_600));
    const stepB = startB();
    await waitFor(async () => (await intent(P, S, T, 'g0:pin:p1:1:message'))?.owner === 'tok-B');
    mirrorA.lastError = 'A wakes up';
    await expect(shows.saveMirror(P, S, mirrorA, a.lease)).rejects.toBeInstanceOf(LeaseLostError);
    expect(await intent(P, S, T, 'g0:pin:p1:1:message')).toMatchObject({ status: 'started', owner: 'tok-B' });
    expect((await shows.getMirror(P, S, T))?.lastError).not.toBe('A wakes up');
    release();
    expect(await stepB).toEqual({ id: 'from-B' });
    expect(await intent(P, S, T, 'g0:pin:p1:1:message')).toMatchObject({ status: 'done', owner: 'tok-B', result: { id: 'from-B' } });
  });

  test('a step with a recovery lookup is marked recoverable; one without is not', async () => {
    const { intents, shows } = svc.rt;
    const [P, S, T] = ['dp', 'ds4', 'dt'];
    const got = await intents.acquire(P, S, T, 'tok-A', 30_000);
    if (!('lease' in got)) throw new Error('A should own the mirror');
    const mirror = newMirror(T, 'youtube');
    await shows.saveMirror(P, S, mirror, got.lease);
    await intents.scoped(P, S, T, 'g0:pin:p1:1', got.lease, { deferComplete: true })('message', async () => ({ id: 'm4' }), async () => null);
    expect(got.lease.pending).toEqual([expect.objectContaining({ recoverable: true })]);
    await shows.saveMirror(P, S, mirror, got.lease);
    await intents.scoped(P, S, T, 'g0:pin:p2:1', got.lease, { deferComplete: true })('message', async () => ({ id: 'm5' }));
    expect(got.lease.pending).toEqual([expect.objectContaining({ recoverable: false })]);
  });

  test.each([{ index: false }, { index: true }])(
    'the run\'s last save writes a deferred done record with the mirror in its one Lua step (index keys: $index)',
    async ({ index }) => {
      const { intents, shows, redis, keys } = svc.rt;
      const [P, S, T] = ['dp', `ds5-${index}`, 'dt'];
      await redis.hset(keys.desired(P, S), 'v', '2');
      const got = await intents.acquire(P, S, T, 'tok-A', 30_000);
      if (!('lease' in got)) throw new Error('A should own the mirror');
      const mirror = newMirror(T, 'youtube');
      await shows.saveMirror(P, S, mirror, got.lease);
      await intents.scoped(P, S, T, 'g0:pin:p1:1', got.lease, { deferComplete: true })('message', async () => ({ id: 'm6' }), async () => null);
      expect(await intent(P, S, T, 'g0:pin:p1:1:message')).toMatchObject({ status: 'started' });
      mirror.lastError = 'last save';
      const r = await shows.saveMirrorFinal(P, S, mirror, got.lease, 2, undefined, undefined, index ? { externalId: 'ext-ds5' } : undefined);
      expect(r.version).toBe(2);
      expect(got.lease.released).toBe(true);
      expect(got.lease.pending).toBeUndefined();
      expect(await intent(P, S, T, 'g0:pin:p1:1:message')).toMatchObject({ status: 'done', owner: 'tok-A', result: { id: 'm6' } });
      expect((await shows.getMirror(P, S, T))?.lastError).toBe('last save');
      if (index) expect(await redis.get(keys.targetExternalShow(T, 'ext-ds5'))).toBe(S);
    },
  );

  test('a last save whose revision check fails still records the done step, then reports the conflict', async () => {
    const { intents, shows, redis, keys } = svc.rt;
    const [P, S, T] = ['dp', 'ds6', 'dt'];
    await redis.hset(keys.desired(P, S), 'v', '1');
    const got = await intents.acquire(P, S, T, 'tok-A', 30_000);
    if (!('lease' in got)) throw new Error('A should own the mirror');
    const mirror = newMirror(T, 'youtube');
    await shows.saveMirror(P, S, mirror, got.lease);
    await intents.scoped(P, S, T, 'g0:pin:p1:1', got.lease, { deferComplete: true })('message', async () => ({ id: 'm7' }), async () => null);
    await expect(shows.saveMirrorFinal(P, S, { ...mirror, rev: 0 }, got.lease, 1)).rejects.toBeInstanceOf(MirrorConflictError);
    expect(await intent(P, S, T, 'g0:pin:p1:1:message')).toMatchObject({ status: 'done', result: { id: 'm7' } });
    expect(got.lease.pending).toBeUndefined();
    expect(await redis.get(got.lease.key)).toBe('tok-A'); // not released: the run goes on
  });

  test('a last save of a run whose step was taken over records nothing and saves nothing', async () => {
    const { shows, redis, keys } = svc.rt;
    const intents = new IntentRepository(svc.rt.redis, svc.rt.keys, svc.rt.box, { attemptMs: 1_000, settleMs: 500 });
    const [P, S, T] = ['dp', 'ds7', 'dt'];
    await redis.hset(keys.desired(P, S), 'v', '1');
    const a = await intents.acquire(P, S, T, 'tok-A', 300);
    if (!('lease' in a)) throw new Error('A should own the mirror');
    const mirrorA = newMirror(T, 'youtube');
    await shows.saveMirror(P, S, mirrorA, a.lease);
    await intents.scoped(P, S, T, 'g0:pin:p1:1', a.lease, { deferComplete: true })('message', async () => ({ id: 'from-A' }), async () => null);
    await waitFor(async () => (await redis.exists(keys.mirrorLease(P, S, T))) === 0, 5_000, 20);
    // B took the mirror over, then the step (after A's attempt settled), and let the lease go again:
    // A's last save finds the step another run's.
    const b = await intents.acquire(P, S, T, 'tok-B', 30_000);
    if (!('lease' in b)) throw new Error('B should own the mirror');
    await new Promise((r) => setTimeout(r, 1_600));
    await intents.scoped(P, S, T, 'g0:pin:p1:1', b.lease)('message', async () => ({ id: 'from-B' }));
    await intents.release(b.lease);
    mirrorA.lastError = 'A wakes up';
    await expect(shows.saveMirrorFinal(P, S, mirrorA, a.lease, 1)).rejects.toBeInstanceOf(LeaseLostError);
    expect(await intent(P, S, T, 'g0:pin:p1:1:message')).toMatchObject({ status: 'done', owner: 'tok-B', result: { id: 'from-B' } });
    expect((await shows.getMirror(P, S, T))?.lastError).not.toBe('A wakes up');
    expect(await redis.get(keys.mirrorLease(P, S, T))).toBeNull(); // not taken back
  });

  test('a step whose result carries no secret (resultInClear) keeps it in clear; others are sealed', async () => {
    const { intents, shows, redis, keys } = svc.rt;
    const [P, S, T] = ['dp', 'ds8', 'dt'];
    const got = await intents.acquire(P, S, T, 'tok-A', 30_000);
    if (!('lease' in got)) throw new Error('A should own the mirror');
    const mirror = newMirror(T, 'youtube');
    await shows.saveMirror(P, S, mirror, got.lease);
    const once = intents.scoped(P, S, T, 'g0:pin:p1:1', got.lease);
    await once('clear', async () => ({ id: 'm8' }), undefined, { resultInClear: true });
    await once('sealed', async () => ({ streamName: 'secret-key' }));
    const clear = JSON.parse((await redis.get(keys.intent(P, S, T, 'g0:pin:p1:1:clear')))!) as Record<string, unknown>;
    expect(clear).toMatchObject({ status: 'done', result: { id: 'm8' } });
    expect(clear['resultSealed']).toBeUndefined();
    const sealedRaw = (await redis.get(keys.intent(P, S, T, 'g0:pin:p1:1:sealed')))!;
    expect(sealedRaw).not.toContain('secret-key');
    expect(await intent(P, S, T, 'g0:pin:p1:1:sealed')).toMatchObject({ status: 'done', result: { streamName: 'secret-key' } });
    // Found done again: both results come back as they were.
    expect(await once('clear', async () => ({ id: 'again' }))).toEqual({ id: 'm8' });
    expect(await once('sealed', async () => ({ streamName: 'again' }))).toEqual({ streamName: 'secret-key' });
  });

  /**
   * OpContext.recorded (IntentRepository.recorded): a look at a step without running it. YouTube's look
   * at its recorded read went through `once` with a run() that refused at once, a start record written
   * and deleted again (two scripts, a replica WAIT where it is on); the look is one GET: a done step's
   * result (clear or sealed; one the run deferred to its next save too), nothing for a started step or
   * none, IntentCorruptError for an unreadable record, as a start would.
   */
  test('a look at a step (recorded) returns a done result, clear, sealed or deferred, undefined otherwise, and writes nothing', async () => {
    const { intents, shows, redis, keys } = svc.rt;
    const [P, S, T] = ['dp', 'ds9', 'dt'];
    const got = await intents.acquire(P, S, T, 'tok-A', 30_000);
    if (!('lease' in got)) throw new Error('A should own the mirror');
    await shows.saveMirror(P, S, newMirror(T, 'youtube'), got.lease);
    const once = intents.scoped(P, S, T, 'g0:update:1', got.lease);
    await once('clear', async () => ({ id: 'm9' }), undefined, { resultInClear: true });
    await once('sealed', async () => ({ streamName: 'secret-key' }));
    await intents.scoped(P, S, T, 'g0:update:1', got.lease, { deferComplete: true })('deferred', async () => ({ id: 'd9' }), undefined, { resultInClear: true });
    await redis.set(keys.intent(P, S, T, 'g0:update:1:started'), JSON.stringify({ status: 'started', owner: 'tok-B', startedAt: new Date().toISOString(), until: Date.now() + 60_000 }));
    await redis.set(keys.intent(P, S, T, 'g0:update:1:corrupt'), '{"status":"done","resu');
    const look = intents.recorded(P, S, T, 'g0:update:1', got.lease);
    const monitor = await (redis as Redis).monitor(); // (one Redis here, not a Cluster)
    const commands: string[] = [];
    monitor.on('monitor', (_time: string, args: string[]) => {
      if (args.some((a) => a.includes(':intent:'))) commands.push(String(args[0]).toLowerCase());
    });
    try {
      const seen = {
        clear: await look('clear'),
        sealed: await look('sealed'),
        deferred: await look('deferred'),
        started: await look('started'),
        none: await look('none'),
        corrupt: await look('corrupt').catch((e: unknown) => e),
      };
      await redis.ping(); // (MONITOR's lines of the looks are in before this one's reply)
      expect(seen).toEqual({ clear: { id: 'm9' }, sealed: { streamName: 'secret-key' }, deferred: { id: 'd9' }, started: undefined, none: undefined, corrupt: expect.any(IntentCorruptError) });
      expect(commands).toEqual(['get', 'get', 'get', 'get', 'get']); // (the deferred one not read: the run's own pending record is its result)
    } finally {
      monitor.disconnect();
    }
    // Still started by tok-B (not taken over, not forgotten); the deferred step's record still its start (its done record waits for the save).
    expect(JSON.parse((await redis.get(keys.intent(P, S, T, 'g0:update:1:started')))!)).toMatchObject({ status: 'started', owner: 'tok-B' });
    expect(JSON.parse((await redis.get(keys.intent(P, S, T, 'g0:update:1:deferred')))!)).toMatchObject({ status: 'started', owner: 'tok-A' });
  });

  // A look is an intent operation of the run like a step's start: a run whose lease was lost, or that
  // gave the mirror up, gets LeaseLostError, not a result to go on with.
  test.each([['lost'], ['revoked']] as const)('a look at a done step (recorded) by a run whose lease is %s throws LeaseLostError', async (how) => {
    const { intents, shows } = svc.rt;
    const [P, S, T] = ['dp', `ds-${how}`, 'dt'];
    const got = await intents.acquire(P, S, T, 'tok-A', 30_000);
    if (!('lease' in got)) throw new Error('A should own the mirror');
    await shows.saveMirror(P, S, newMirror(T, 'youtube'), got.lease);
    await intents.scoped(P, S, T, 'g0:update:1', got.lease)('clear', async () => ({ id: 'm10' }), undefined, { resultInClear: true });
    const look = intents.recorded(P, S, T, 'g0:update:1', got.lease);
    expect(await look('clear')).toEqual({ id: 'm10' });
    got.lease[how] = true;
    await expect(look('clear')).rejects.toBeInstanceOf(LeaseLostError);
  });
});

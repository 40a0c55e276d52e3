/**
 * A pin's intent `done` record rides on the mirror save that follows the call (IntentRepository.scoped
 * with deferComplete, ShowRepository.saveMirror): the save writes it in the same Lua step, owner-
 * checked like a completion of its own, also when the mirror's revision check then fails; a run that
 * lost the step to a takeover records nothing and saves nothing. Real redis-server.
 */
import { newMirror } from '../../src/domain/mirror.js';
import { IntentRepository, LeaseLostError } from '../../src/store/intent.repository.js';
import { MirrorConflictError } from '../../src/store/show.repository.js';
import { startService, waitFor, type TestService } from '../helpers/service.js';

let svc: TestService;

beforeAll(async () => {
  svc = await startService(); // no workers: the test plays the runs itself
});
afterAll(async () => {
  await svc?.close();
});

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

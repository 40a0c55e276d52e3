/**
 * The intent scripts read a record's owner from its head (`{"status":…,"owner":"…",`: OWNED_BY_LUA in
 * src/store/intent.repository.ts) and write a new step's started record by appending its `until` to
 * the text the run sent, without cjson. Real redis-server: the started record is still a JSON record
 * with every field; an owner whose text JSON escapes is compared decoded; a record in any other field
 * order (as cjson writes one) and an owner that only starts like the run's token are refused as before.
 */
import { newMirror } from '../../src/domain/mirror.js';
import { IntentCorruptError, IntentRepository, LeaseLostError } from '../../src/store/intent.repository.js';
import { startService, type TestService } from '../helpers/service.js';

let svc: TestService;

beforeAll(async () => {
  svc = await startService(); // no workers: the test plays the runs itself
});
afterAll(async () => {
  await svc?.close();
});

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

test.each(CORRUPT)('a step whose record is unreadable (%s) is not run again: the error names it, the record stays', async (_what, corrupt) => {
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

/**
 * ownMirror (src/domain/mirror.ts): which stored mirror record is a target's own. A record left by an
 * earlier target of the same id (deleted, created again) reads as a new mirror that replaces it (its
 * `rev`), under the next generation (no intent of the old target's applies); records of targets and
 * versions without incarnations keep working.
 */
import { newMirror, ownMirror, type MirrorDoc } from '../../src/domain/mirror.js';

function stored(fields: Partial<MirrorDoc>): MirrorDoc {
  return { ...newMirror('wn', 'whatnot'), state: 'failed', lastError: 'old error', remote: { externalId: 'old-show', url: 'https://x/old' }, generation: 2, rev: 7, updatedAt: '2026-12-01T10:00:00.000Z', ...fields } as MirrorDoc;
}
const target = { id: 'wn', platform: 'whatnot' as const, incarnation: 'inc_new', createdAt: '2026-12-02T10:00:00.000Z' };

test("another incarnation's record reads as a new mirror that replaces it, under the next generation", () => {
  const m = ownMirror(stored({ incarnation: 'inc_old' }), target)!;
  expect(m).toMatchObject({ targetId: 'wn', state: 'pending', remote: undefined, lastError: null, incarnation: 'inc_new', rev: 7, generation: 3, syncedVersion: 0 });
  expect(Object.keys(m.pins)).toEqual([]);
});

test("the target's own record is read as it is", () => {
  const own = stored({ incarnation: 'inc_new' });
  expect(ownMirror(own, target)).toBe(own);
  expect(ownMirror(null, target)).toBeNull();
});

test('a record without an incarnation: older than the target is not its own, written since it was created is (and gets its stamp)', () => {
  expect(ownMirror(stored({}), target)).toMatchObject({ state: 'pending', remote: undefined, rev: 7, generation: 3 });
  const since = stored({ updatedAt: '2026-12-02T10:00:00.000Z' });
  expect(ownMirror(since, target)).toBe(since);
  expect(since.incarnation).toBe('inc_new');
});

test('a target without an incarnation (created before them) owns the records without one, not a stamped one', () => {
  const legacy = { id: 'wn', platform: 'whatnot' as const, createdAt: '2026-12-02T10:00:00.000Z' };
  const plain = stored({});
  expect(ownMirror(plain, legacy)).toBe(plain);
  expect(ownMirror(stored({ incarnation: 'inc_old' }), legacy)).toMatchObject({ state: 'pending', remote: undefined, generation: 3 });
});

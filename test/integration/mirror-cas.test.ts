/**
 * A sync and an operator action must not overwrite each other's mirror: saves are compare-and-set
 * on the mirror's revision (the benchmark saw operator links undone by a sync that had read the
 * mirror before the link).
 */
import { newMirror } from '../../src/domain/mirror.js';
import { MirrorConflictError } from '../../src/store/show.repository.js';
import { serviceForFile, type TestService } from '../helpers/service.js';

let svc: TestService;
serviceForFile((started) => (svc = started));

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

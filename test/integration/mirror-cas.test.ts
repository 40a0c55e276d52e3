/**
 * A sync and an operator action must not overwrite each other's mirror: saves are compare-and-set
 * on the mirror's revision (the benchmark saw operator links undone by a sync that had read the
 * mirror before the link).
 */
import { newMirror } from '../../src/domain/mirror.js';
import { MirrorConflictError } from '../../src/store/show.repository.js';
import { startService, type TestService } from '../helpers/service.js';

let svc: TestService;
beforeAll(async () => {
  svc = await startService();
});
afterAll(async () => {
  await svc?.close();
});

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

/**
 * Review 2026-12-02: a save refused because the run's target was deleted (-2) wrote nothing, yet it
 * dropped the run's deferred done records (`lease.pending`: steps already made on the platform), so
 * the run's flush found nothing to write and the intent stayed `started`: a target re-created with
 * the same id could repeat the call. They stay on the lease for the flush now, as after a lost lease.
 */
import { newMirror } from '../../src/domain/mirror.js';
import { TargetGoneError } from '../../src/store/show.repository.js';
import { startService, type TestService } from '../helpers/service.js';

let svc: TestService;
afterAll(async () => {
  await svc?.close();
});

test('a save refused for a deleted target keeps the deferred done records for the flush', async () => {
  svc = await startService({ workers: false });
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

/**
 * A mirror failed because the target's stored credentials no configured key opens (SECRETS_KEY changed
 * without rotation) recorded no syncedVersion, so every sweep (10 s) queued it again, and every run
 * tried the credentials again and logged an error line: per mirror, per sweep, for ever. Now the sweep
 * leaves it alone while nothing changed (the show, the target's credentials, the process's keys), and a
 * worker restarted with the restored key takes it up again by itself (no resync per show). Real Redis.
 */
import { randomBytes } from 'node:crypto';
import { SecretBox } from '../../src/lib/crypto.js';
import { createLogger } from '../../src/lib/logger.js';
import { SweepService } from '../../src/mirror/sweep.service.js';
import { CREDENTIALS } from '../helpers/platforms.js';
import { createPartner, sampleShow, sendEvent, showEvent, startService, waitFor, type TestService } from '../helpers/service.js';
import { startSim, type TestSim } from '../helpers/sim.js';

let svc: TestService;
let sim: TestSim;
beforeAll(async () => {
  sim = await startSim();
  svc = await startService(); // api + dispatch; the worker role is started (and restarted) below
});
afterAll(async () => {
  await svc.close();
  await sim.close();
});

test('an unreadable secret fails the mirror once, not once per sweep; a worker restarted with the restored key syncs it', async () => {
  const lostKey = randomBytes(32).toString('base64');
  const lost = new SecretBox(lostKey);
  const secret = await createPartner(svc, 'sus');
  const created = await svc.api('/v1/partners/sus/targets?verify=false', {
    json: { id: 'sus-yt', platform: 'youtube', name: 'YT', credentials: CREDENTIALS.youtube, baseUrl: sim.base('youtube'), commissionRateBps: 500 },
  });
  expect(created.status).toBe(201);
  // Sealed under a key this service no longer has (SECRETS_KEY changed without rotation).
  await svc.rt.partners.updateTarget('sus', 'sus-yt', (t) => ({ ...t, credentialsSealed: lost.encrypt(svc.rt.box.decrypt(t.credentialsSealed)) }));
  await svc.startWorkers();

  expect((await sendEvent(svc, 'sus', secret, showEvent('show.scheduled', sampleShow('sus-1'), new Date().toISOString()))).status).toBe(202);
  const failed = await waitFor(async () => {
    const m = await svc.rt.shows.getMirror('sus', 'sus-1', 'sus-yt');
    // Once the run is over: its last save records what the partner was told (notified).
    return m?.state === 'failed' && m.notified !== undefined ? m : undefined;
  }, 10_000);
  expect(failed.lastError).toMatch(/cannot be opened with SECRETS_KEY/);

  // The view's syncedVersion keeps its meaning: the failed run synced nothing.
  const view = (await (await svc.api('/v1/partners/sus/shows/sus-1')).json()) as { mirrors: { targetId: string; syncedVersion?: number }[] };
  expect(view.mirrors.find((m) => m.targetId === 'sus-yt')?.syncedVersion ?? 0).toBe(failed.syncedVersion);

  // The hardest case for the sweep: a failed mirror that had synced the show's version before it failed
  // (a live mirror whose delayed pin job met the unreadable key): a failed mirror at the show's version
  // is otherwise finished for the sweep, and a restored key must still take it up.
  const desired = await svc.rt.shows.desired('sus', 'sus-1');
  await svc.rt.shows.saveMirror('sus', 'sus-1', { ...failed, syncedVersion: desired!.version });
  const atVersion = (await svc.rt.shows.getMirror('sus', 'sus-1', 'sus-yt'))!;
  expect([atVersion.state, atVersion.syncedVersion, atVersion.unreadable !== undefined]).toEqual(['failed', desired!.version, true]);

  // Several sweeps of a process with the same keys: nothing queued (each was a run and an error line), the mirror untouched.
  const sweep = new SweepService(svc.rt.shows, svc.rt.partners, svc.rt.syncProducer, createLogger('silent'), 100, svc.rt.box.keyring);
  for (let i = 0; i < 5; i++) expect(await sweep.sweep()).toEqual({ shows: 1, enqueued: 0, finished: 0 });
  const after = await svc.rt.shows.getMirror('sus', 'sus-1', 'sus-yt');
  expect(after?.rev).toBe(atVersion.rev);
  expect(after?.state).toBe('failed');

  // Restarted with the key restored (as SECRETS_KEY_PREVIOUS): the sweep of a process with those keys
  // queues the mirror again, and it syncs, with no operator action.
  await svc.stopWorkers();
  await svc.startWorkers({ secretsKeyPrevious: lostKey });
  const restored = new SecretBox(svc.config.secretsKey!, [lostKey]);
  const resweep = new SweepService(svc.rt.shows, svc.rt.partners, svc.rt.syncProducer, createLogger('silent'), 100, restored.keyring);
  expect((await resweep.sweep()).enqueued).toBe(1);
  const synced = await waitFor(async () => {
    const m = await svc.rt.shows.getMirror('sus', 'sus-1', 'sus-yt');
    return m?.state === 'ready' ? m : undefined;
  }, 15_000);
  expect(synced.lastError).toBeNull();
  expect(synced.remote?.externalId).toBeTruthy();
  expect(synced.unreadable).toBeUndefined();
});

test('a mirror that had failed for another reason is marked too, and given back its reason with its state once the key is restored', async () => {
  // Workers with the service's own keys only (the first test left them with its restored key).
  await svc.stopWorkers();
  await svc.startWorkers();
  const lostKey = randomBytes(32).toString('base64');
  const lost = new SecretBox(lostKey);
  const secret = await createPartner(svc, 'sus2');
  expect((await svc.api('/v1/partners/sus2/targets?verify=false', { json: { id: 'sus2-yt', platform: 'youtube', name: 'YT', credentials: CREDENTIALS.youtube, baseUrl: sim.base('youtube'), commissionRateBps: 500 } })).status).toBe(201);
  expect((await sendEvent(svc, 'sus2', secret, showEvent('show.scheduled', sampleShow('sus2-1'), new Date().toISOString()))).status).toBe(202);
  const ready = await waitFor(async () => {
    const m = await svc.rt.shows.getMirror('sus2', 'sus2-1', 'sus2-yt');
    return m?.state === 'ready' && m.notified !== undefined ? m : undefined;
  }, 15_000);
  // Failed for another reason, then the key is lost and the show changes.
  await svc.rt.shows.saveMirror('sus2', 'sus2-1', { ...ready, state: 'failed', lastError: 'retries exhausted (test)' });
  await svc.rt.partners.updateTarget('sus2', 'sus2-yt', (t) => ({ ...t, credentialsSealed: lost.encrypt(svc.rt.box.decrypt(t.credentialsSealed)) }));
  const later = { ...sampleShow('sus2-1'), title: 'changed' };
  expect((await sendEvent(svc, 'sus2', secret, showEvent('show.updated', later, new Date(Date.now() + 1000).toISOString()))).status).toBe(202);
  const marked = await waitFor(async () => {
    const m = await svc.rt.shows.getMirror('sus2', 'sus2-1', 'sus2-yt');
    return m && /cannot be opened with SECRETS_KEY/.test(m.lastError ?? '') && m.notified !== undefined ? m : undefined;
  }, 10_000);
  expect([marked.state, marked.unreadable?.was, marked.unreadable?.lastError]).toEqual(['failed', 'failed', 'retries exhausted (test)']);
  // Not run again by the sweep while nothing changed (it was, at every sweep).
  const sweep = new SweepService(svc.rt.shows, svc.rt.partners, svc.rt.syncProducer, createLogger('silent'), 100, svc.rt.box.keyring);
  for (let i = 0; i < 3; i++) expect((await sweep.sweep()).enqueued).toBe(0);

  // The key restored: the mirror is failed again for its own reason, not with the secret's error nor with none.
  await svc.stopWorkers();
  await svc.startWorkers({ secretsKeyPrevious: lostKey });
  const resweep = new SweepService(svc.rt.shows, svc.rt.partners, svc.rt.syncProducer, createLogger('silent'), 100, new SecretBox(svc.config.secretsKey!, [lostKey]).keyring);
  expect((await resweep.sweep()).enqueued).toBe(1);
  const back = await waitFor(async () => {
    const m = await svc.rt.shows.getMirror('sus2', 'sus2-1', 'sus2-yt');
    return m && m.unreadable === undefined ? m : undefined;
  }, 10_000);
  expect([back.state, back.lastError]).toEqual(['failed', 'retries exhausted (test)']);
});

/**
 * A mirror's platform stream key (`remote.ingest.streamKeySealed`, YouTube's stream name, the key part of
 * Facebook's secure_stream_url) sealed under a key this service no longer has (SECRETS_KEY changed, or
 * SECRETS_KEY_PREVIOUS removed, without rotation). It was opened as the mirror record was read, so every
 * read of the show threw: GET show and the ops console's show answered 503 for the whole show, and a sync
 * of the mirror threw before its error handling (BullMQ retries, the mirror left as it was, no lastError).
 * Now the show is read with that mirror's key marked unreadable, a sync fails the mirror at once with a
 * lastError telling ops what to restore, and the sealed value stays as it was: the old key opens it
 * again. Real service (API and workers), real Redis.
 */
import { randomBytes } from 'node:crypto';
import { newMirror } from '../../src/domain/mirror.js';
import { SecretBox } from '../../src/lib/crypto.js';
import { ShowRepository } from '../../src/store/show.repository.js';
import { createPartner, sampleShow, sendEvent, showEvent, startService, waitFor, type TestService } from '../helpers/service.js';

let svc: TestService;
beforeAll(async () => {
  svc = await startService({ workers: true });
});
afterAll(async () => {
  await svc.close();
});

/** The key that sealed the stream keys below, which the service does not have (removed since). */
const lostKey = randomBytes(32).toString('base64');
const lost = new SecretBox(lostKey);
const STREAM_KEY = 'FB-1234-0-secret-stream-key';
const INGEST_URL = 'rtmps://live-api-s.facebook.com:443/rtmp/';

/** A `ready` mirror on a Facebook show, its stream key sealed under the lost key; the sealed value as stored. */
async function mirrorWithLostKey(partnerId: string, showId: string, targetId: string): Promise<string> {
  await svc.rt.shows.updateMirror(partnerId, showId, targetId, () => newMirror(targetId, 'facebook'), (m) => {
    m.state = 'ready';
    m.remote = { externalId: '1234', url: 'https://www.facebook.com/1234', ingest: { url: INGEST_URL, streamKey: STREAM_KEY }, data: {} };
    return true;
  });
  const key = svc.rt.keys.mirror(partnerId, showId, targetId);
  const doc = JSON.parse((await svc.rt.redis.get(key))!) as { remote: { ingest: { streamKeySealed: string } } };
  doc.remote.ingest.streamKeySealed = lost.encrypt(STREAM_KEY);
  await svc.rt.redis.set(key, JSON.stringify(doc));
  return doc.remote.ingest.streamKeySealed;
}

async function facebookTarget(partnerId: string, targetId: string, enabled: boolean): Promise<void> {
  const created = await svc.api(`/v1/partners/${partnerId}/targets?verify=false`, {
    json: { id: targetId, platform: 'facebook', name: 'FB', baseUrl: 'http://127.0.0.1:9/facebook', credentials: { pageId: '1234567890', pageAccessToken: 'page-token' }, commissionRateBps: 500, enabled },
  });
  expect(created.status).toBe(201);
}

test('a show whose mirror holds a stream key no key opens is still read: the mirror shown, its key marked unreadable (was a 503 for the whole show)', async () => {
  const secret = await createPartner(svc, 'sk-view');
  await facebookTarget('sk-view', 'sk-view-fb', false); // disabled: no sync changes the mirror meanwhile
  expect((await sendEvent(svc, 'sk-view', secret, showEvent('show.scheduled', sampleShow('sk-1'), new Date().toISOString()))).status).toBe(202);
  await mirrorWithLostKey('sk-view', 'sk-1', 'sk-view-fb');

  const r = await svc.api('/v1/partners/sk-view/shows/sk-1');
  expect(r.status).toBe(200);
  const view = (await r.json()) as { mirrors: { targetId: string; state: string; ingest?: Record<string, unknown> }[] };
  const m = view.mirrors.find((x) => x.targetId === 'sk-view-fb');
  expect(m).toMatchObject({ state: 'ready', ingest: { url: INGEST_URL, streamKeyUnreadable: true } });
  expect(m!.ingest!['streamKey']).toBeUndefined();

  // The ops console's show reads the same mirrors.
  expect((await svc.api('/v1/ops/partners/sk-view/shows/sk-1')).status).toBe(200);
});

test('a sync of such a mirror fails it at once with a lastError that says what to restore; the sealed key is kept, and the old key opens it again', async () => {
  const secret = await createPartner(svc, 'sk-sync');
  await facebookTarget('sk-sync', 'sk-sync-fb', true);
  const sealed = await mirrorWithLostKey('sk-sync', 'sk-2', 'sk-sync-fb');
  expect((await sendEvent(svc, 'sk-sync', secret, showEvent('show.scheduled', sampleShow('sk-2'), new Date().toISOString()))).status).toBe(202);

  // Before: the sync threw as it read the mirror (BullMQ retries), the mirror stayed `ready`, lastError null.
  const mirror = await waitFor(async () => {
    const view = (await (await svc.api('/v1/partners/sk-sync/shows/sk-2')).json()) as { mirrors: { targetId: string; state: string; lastError: string | null }[] };
    const m = view?.mirrors?.find((x) => x.targetId === 'sk-sync-fb');
    return m?.state === 'failed' ? m : undefined;
  }, 10_000);
  expect(mirror.lastError).toMatch(/^this mirror's stored platform stream key cannot be opened with SECRETS_KEY or SECRETS_KEY_PREVIOUS .*restore the key that sealed it .*resync.*PUT/);

  // The failed mirror was saved with its sealed key as it was: neither dropped nor sealed anew.
  const stored = JSON.parse((await svc.rt.redis.get(svc.rt.keys.mirror('sk-sync', 'sk-2', 'sk-sync-fb')))!) as { state: string; remote: { ingest: { url: string; streamKeySealed: string } } };
  expect(stored.state).toBe('failed');
  expect(stored.remote.ingest).toEqual({ url: INGEST_URL, streamKeySealed: sealed });
  // Restoring the old key (here as SECRETS_KEY_PREVIOUS) brings the key back.
  const restored = new ShowRepository(svc.rt.redis, svc.rt.keys, 86_400, new SecretBox(svc.config.secretsKey!, [lostKey]));
  expect((await restored.getMirror('sk-sync', 'sk-2', 'sk-sync-fb'))!.remote!.ingest!.streamKey).toBe(STREAM_KEY);

  // The key lost for good: linking the mirror to its platform show again reads the show (and a new
  // ingest) from the platform, as the lastError says, instead of failing on the old key again.
  expect((await svc.api('/v1/partners/sk-sync/shows/sk-2/mirrors/sk-sync-fb', { method: 'PUT', json: { externalId: '1234' } })).status).toBe(200);
  const relinked = await waitFor(async () => {
    const m = await svc.rt.shows.getMirror('sk-sync', 'sk-2', 'sk-sync-fb');
    return m?.lastError ? m : undefined; // the platform (nothing listens on its port) answers the attach
  }, 10_000);
  expect(relinked.lastError).not.toMatch(/stream key/);
});

/**
 * A stored secret that no configured key opens (SECRETS_KEY changed, or SECRETS_KEY_PREVIOUS removed,
 * without the rotation of docs/operations.md) is a misconfiguration of the service, not the caller's
 * fault. It was a 500 on partner events (every active secret was opened, so one unreadable rotated-out
 * secret refused events signed with the readable current one too), and a sync of a target whose
 * credentials no key opens threw to BullMQ: ten retries, then a failed job, the mirror left `pending`
 * without a word. Now: events verify with the secrets that open; when none of them verifies and one
 * could not be tried, a 503 `secret-unreadable` problem telling ops what to restore (the partner retries
 * it); the mirror fails at once with a lastError that says what to do; a delivery whose signing secret
 * no key opens is failed with such an error. Real service (the roles of `npm start`), real Redis.
 */
import { randomBytes } from 'node:crypto';
import { SecretBox, SecretUnreadableError } from '../../src/lib/crypto.js';
import { SECRET_UNREADABLE_DELIVERY_ERROR } from '../../src/outbound/delivery.service.js';
import { signatureHeader } from '../../src/sources/signature.js';
import { startReceiver } from '../helpers/adapter-sim.js';
import { ADMIN_KEY, createPartner, sampleShow, sendEvent, showEvent, startService, waitFor, type TestService } from '../helpers/service.js';

let svc: TestService;
beforeAll(async () => {
  svc = await startService({ workers: true });
});
afterAll(async () => {
  await svc.close();
});

/** A box with a key this service does not have (one removed since). */
const lost = new SecretBox(randomBytes(32).toString('base64'));

/** Rewrites the partner's stored webhook secrets: those `unreadable` says are sealed again under the lost key. */
async function sealSecretsWithLostKey(partnerId: string, unreadable: (index: number) => boolean): Promise<void> {
  const key = svc.rt.keys.partner(partnerId);
  const secrets = JSON.parse((await svc.rt.redis.hget(key, 'secrets'))!) as { sealed: string }[];
  const resealed = secrets.map((s, i) => (unreadable(i) ? { ...s, sealed: lost.encrypt(svc.rt.box.decrypt(s.sealed)) } : s));
  await svc.rt.redis.hset(key, 'secrets', JSON.stringify(resealed));
}

async function expectSecretUnreadable(r: Response): Promise<void> {
  expect(r.status).toBe(503);
  expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(r.headers.get('retry-after')).toBe('60');
  const p = (await r.json()) as { type: string; status: number; detail: string };
  expect(p.type).toBe('https://syndicast.dev/problems/secret-unreadable');
  expect(p.status).toBe(503);
  expect(p.detail).toMatch(/SECRETS_KEY_PREVIOUS/);
}

test('a partner event whose secret no key opens is a 503 secret-unreadable problem, not a 500; a readable current secret still verifies', async () => {
  const original = await createPartner(svc, 'su-events');
  const rotated = await svc.api('/v1/partners/su-events/webhook-secret/rotate', { method: 'POST' });
  expect(rotated.status).toBe(200);
  const current = ((await rotated.json()) as { webhookSecret: string }).webhookSecret;
  // The rotated-out secret (still in its grace period) is the one no key opens.
  await sealSecretsWithLostKey('su-events', (i) => i === 0);

  // Signed with the current secret: it opens and verifies (this was a 500: every active secret was opened first).
  const ok = await sendEvent(svc, 'su-events', current, showEvent('show.scheduled', sampleShow('su-1'), new Date().toISOString()));
  expect(ok.status).toBe(202);

  // Signed with the secret no key opens: the service cannot tell it from a forgery; a 503 the partner retries.
  const r = await sendEvent(svc, 'su-events', original, showEvent('show.scheduled', sampleShow('su-2'), new Date().toISOString()));
  await expectSecretUnreadable(r);
  expect((await svc.api('/v1/partners/su-events/shows/su-2')).status).toBe(404);
});

test('a partner whose only secret no key opens: 503 for its events, whatever they are signed with', async () => {
  const secret = await createPartner(svc, 'su-only');
  await sealSecretsWithLostKey('su-only', () => true);
  await expectSecretUnreadable(await sendEvent(svc, 'su-only', secret, showEvent('show.scheduled', sampleShow('su-3'), new Date().toISOString())));
});

test('a sync of a target whose credentials no key opens fails the mirror at once, with a lastError that says what to do', async () => {
  const secret = await createPartner(svc, 'su-sync');
  const created = await svc.api('/v1/partners/su-sync/targets?verify=false', {
    json: { id: 'su-fb', platform: 'facebook', name: 'FB', baseUrl: 'http://127.0.0.1:9/facebook', credentials: { pageId: '1234567890', pageAccessToken: 'page-token' }, commissionRateBps: 500 },
  });
  expect(created.status).toBe(201);
  const r = await svc.rt.partners.updateTarget('su-sync', 'su-fb', (t) => ({ ...t, credentialsSealed: lost.encrypt(JSON.stringify({ pageId: '1234567890', pageAccessToken: 'page-token' })) }));
  expect(r).not.toBeNull();

  expect((await sendEvent(svc, 'su-sync', secret, showEvent('show.scheduled', sampleShow('su-4'), new Date().toISOString()))).status).toBe(202);
  // Before: the job threw to BullMQ (10 attempts with backoff), the mirror stayed `pending`, lastError null.
  const mirror = await waitFor(async () => {
    const view = (await (await svc.api('/v1/partners/su-sync/shows/su-4')).json()) as { mirrors: { targetId: string; state: string; lastError: string | null }[] };
    const m = view.mirrors.find((x) => x.targetId === 'su-fb');
    return m?.state === 'failed' ? m : undefined;
  }, 10_000);
  expect(mirror.lastError).toMatch(/cannot be opened with SECRETS_KEY or SECRETS_KEY_PREVIOUS: restore the key .*resync.* PATCH/);
  expect(mirror.lastError).not.toContain('page-token');
});

test("a platform webhook for a target whose credentials no key opens is a 503 secret-unreadable problem (was a 500): the platform retries it once the key is back", async () => {
  await createPartner(svc, 'su-pw');
  const created = await svc.api('/v1/partners/su-pw/targets?verify=false', {
    json: { id: 'su-pw-wn', platform: 'whatnot', name: 'WN', baseUrl: 'http://127.0.0.1:9/whatnot', credentials: { apiKey: 'k' }, commissionRateBps: 500 },
  });
  expect(created.status).toBe(201);
  await svc.rt.partners.updateTarget('su-pw', 'su-pw-wn', (t) => ({ ...t, credentialsSealed: lost.encrypt(JSON.stringify({ apiKey: 'k' })) }));
  await expectSecretUnreadable(await fetch(`${svc.url}/v1/platform-webhooks/su-pw-wn`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }));
});

test("an endpoint whose rotated-out signing secret no key opens still gets its deliveries, signed with the current secret (the worker's real job)", async () => {
  // Every delivery of such an endpoint threw in the attempt (each secret of the grace period was
  // opened), BullMQ's 5 attempts failed it: the partner got nothing though the current secret opens.
  const receiver = await startReceiver();
  try {
    await createPartner(svc, 'su-prev');
    const ep = await svc.api('/v1/partners/su-prev/endpoints', { json: { url: receiver.url, events: ['mirror.updated'] } });
    expect(ep.status).toBe(201);
    const endpointId = ((await ep.json()) as { id: string }).id;
    const rotated = await svc.api(`/v1/partners/su-prev/endpoints/${endpointId}/rotate-secret`, { method: 'POST' });
    expect(rotated.status).toBe(200);
    const current = ((await rotated.json()) as { secret: string }).secret;
    const key = svc.rt.keys.endpoint('su-prev', endpointId);
    const previous = (await svc.rt.redis.hget(key, 'previousSecretSealed'))!;
    await svc.rt.redis.hset(key, 'previousSecretSealed', lost.encrypt(svc.rt.box.decrypt(previous)));

    const { messageId } = await svc.rt.outbound.emit('su-prev', 'mirror.updated', { showId: 'su-6' }, 'su-prev-1');
    expect(messageId).not.toBeNull();
    await waitFor(async () => (receiver.got.length > 0 ? true : undefined), 10_000);
    const got = receiver.got[0]!;
    expect(String(got.headers['webhook-signature']).split(' ')).toEqual([signatureHeader(current, String(got.headers['webhook-id']), Number(got.headers['webhook-timestamp']), got.body.toString('utf8'))]);
  } finally {
    await receiver.close();
  }
});

test('a delivery that died on a signing secret no key opens is failed with an error that says what to do', async () => {
  // The attempt opens the endpoint's secret; a SecretUnreadableError ends BullMQ's 5 attempts (seconds
  // apart) in markFailed, with the error the worker's 'failed' event hands it. It read "internal error: …".
  await createPartner(svc, 'su-out');
  const ep = await svc.api('/v1/partners/su-out/endpoints', { json: { url: 'https://hooks.example.com/su', events: ['mirror.updated'] } });
  expect(ep.status).toBe(201);
  const endpointId = ((await ep.json()) as { id: string }).id;
  await svc.stopWorkers(); // no attempt of the real job meanwhile
  const { messageId } = await svc.rt.outbound.emit('su-out', 'mirror.updated', { showId: 'su-5' }, 'su-out-1');
  expect(messageId).not.toBeNull();
  await svc.rt.delivery.markFailed({ partnerId: 'su-out', messageId: messageId!, endpointId, run: 1 }, new SecretUnreadableError());
  const r = await fetch(`${svc.url}/v1/partners/su-out/messages/${messageId}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  const message = (await r.json()) as { deliveries: { endpointId: string; state: string; lastError: string }[] };
  expect(message.deliveries.find((d) => d.endpointId === endpointId)).toMatchObject({ state: 'failed', lastError: SECRET_UNREADABLE_DELIVERY_ERROR });
});

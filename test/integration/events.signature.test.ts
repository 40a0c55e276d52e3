/**
 * Inbound partner events, signature edge (the external contract §3): Standard Webhooks signatures, timestamp
 * tolerance, secret rotation and its grace period, multi-signature headers, interop with the
 * `standardwebhooks` library, idempotency by webhook-id, unknown partner. Real redis-server, real HTTP.
 */
import { Webhook } from 'standardwebhooks';
import { sign, signatureHeader, newWebhookSecret } from '../../src/sources/signature.js';
import type { WebhookSecretRecord } from '../../src/store/partner.repository.js';
import { createPartner, sampleShow, sendEvent, showEvent, servicePerFile, startService, type TestService } from '../helpers/service.js';

let svc: TestService;
let secret: string;
const PARTNER = 'sigp';
let seq = 0;

servicePerFile(PARTNER, (started) => ({ svc, secret } = started));

const nowSec = (): number => Math.floor(Date.now() / 1000);
const wid = (): string => `msg_sig_${Date.now()}_${++seq}`;

/** A fresh show event (its own show id unless given), serialized once: the signature covers these bytes. */
function body(showId = `s${++seq}`, overrides: Record<string, unknown> = {}): string {
  return JSON.stringify(showEvent('show.scheduled', sampleShow(showId, overrides), '2026-11-24T17:00:00Z'));
}

async function post(partnerId: string, headers: Record<string, string>, raw: string): Promise<Response> {
  return fetch(`${svc.url}/v1/partners/${partnerId}/events`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: raw });
}

async function expectProblem(r: Response, status: number): Promise<Record<string, unknown>> {
  expect(r.status).toBe(status);
  expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const p = (await r.json()) as Record<string, unknown>;
  expect(p).toMatchObject({ status, title: expect.any(String), type: expect.any(String) });
  return p;
}

async function desiredVersion(showId: string, partnerId = PARTNER, s: TestService = svc): Promise<string | null> {
  return s.rt.redis.hget(s.rt.keys.desired(partnerId, showId), 'v');
}

describe('signature verification', () => {
  test('a valid signature is accepted (202) and the event is stored', async () => {
    const r = await sendEvent(svc, PARTNER, secret, undefined, { body: body('valid1') });
    expect(r.status).toBe(202);
    const j = (await r.json()) as { eventId: string; duplicate: boolean };
    expect(j.duplicate).toBe(false);
    expect(j.eventId).toMatch(/^\d+-\d+$/);
    expect(await desiredVersion('valid1')).toBe('1');
  });

  test('a signature made with another secret is 401 and nothing is stored', async () => {
    const r = await sendEvent(svc, PARTNER, newWebhookSecret(), undefined, { body: body('wrongsecret') });
    await expectProblem(r, 401);
    expect(await desiredVersion('wrongsecret')).toBeNull();
  });

  test('a tampered body is 401', async () => {
    const id = wid();
    const ts = nowSec();
    const original = body('tampered');
    const sig = signatureHeader(secret, id, ts, original);
    const tampered = original.replace('Show tampered', 'Show tampereD');
    expect(tampered).not.toBe(original);
    await expectProblem(await post(PARTNER, { 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': sig }, tampered), 401);
    // A tampered webhook-id (the id is signed too) is refused as well.
    await expectProblem(await post(PARTNER, { 'webhook-id': id + 'x', 'webhook-timestamp': String(ts), 'webhook-signature': sig }, original), 401);
    expect(await desiredVersion('tampered')).toBeNull();
    // The untouched request still verifies: the 401s came from the tampering.
    expect((await post(PARTNER, { 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': sig }, original)).status).toBe(202);
  });

  test('timestamps more than 300 s away are 401; 299 s either way is accepted', async () => {
    // ceil/floor so that sub-second clock drift during the request can only move towards the limit we assert.
    const stale = Math.floor(Date.now() / 1000) - 301;
    const future = Math.ceil(Date.now() / 1000) + 301;
    const p1 = await expectProblem(await sendEvent(svc, PARTNER, secret, undefined, { body: body('stale'), timestamp: stale }), 401);
    expect(String(p1['detail'])).toMatch(/timestamp/);
    await expectProblem(await sendEvent(svc, PARTNER, secret, undefined, { body: body('future'), timestamp: future }), 401);
    expect(await desiredVersion('stale')).toBeNull();
    expect(await desiredVersion('future')).toBeNull();

    const past = Math.ceil(Date.now() / 1000) - 299;
    const ahead = Math.floor(Date.now() / 1000) + 299;
    expect((await sendEvent(svc, PARTNER, secret, undefined, { body: body('past299'), timestamp: past })).status).toBe(202);
    expect((await sendEvent(svc, PARTNER, secret, undefined, { body: body('ahead299'), timestamp: ahead })).status).toBe(202);
  });

  test('a non-numeric timestamp and missing headers are 401', async () => {
    const raw = body('badts');
    const id = wid();
    await expectProblem(await post(PARTNER, { 'webhook-id': id, 'webhook-timestamp': 'yesterday', 'webhook-signature': signatureHeader(secret, id, nowSec(), raw) }, raw), 401);
    await expectProblem(await post(PARTNER, { 'webhook-id': id, 'webhook-timestamp': String(nowSec()) }, raw), 401);
    await expectProblem(await post(PARTNER, {}, raw), 401);
  });
});

describe('multi-signature header', () => {
  const bad = (): string => `v1,${Buffer.alloc(32, 7).toString('base64')}`;

  test('`v1,<bad> v1,<good>` is accepted', async () => {
    const id = wid();
    const ts = nowSec();
    const raw = body('multi-ok');
    const r = await post(PARTNER, { 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': `${bad()} ${signatureHeader(secret, id, ts, raw)}` }, raw);
    expect(r.status).toBe(202);
  });

  test('`v1,<bad> v1,<bad>` is 401', async () => {
    const id = wid();
    const ts = nowSec();
    const raw = body('multi-bad');
    const other = signatureHeader(newWebhookSecret(), id, ts, raw);
    await expectProblem(await post(PARTNER, { 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': `${bad()} ${other}` }, raw), 401);
    expect(await desiredVersion('multi-bad')).toBeNull();
  });

  test('signatures with an unknown version prefix are ignored', async () => {
    const id = wid();
    const ts = nowSec();
    const raw = body('vers');
    const good = sign(secret, id, ts, raw);
    // The right HMAC under another version label does not count...
    await expectProblem(await post(PARTNER, { 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': `v2,${good} v1a,${good}` }, raw), 401);
    // ...and does not get in the way of a v1 one next to it.
    const r = await post(PARTNER, { 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': `v1a,garbage v2,${good} v1,${good}` }, raw);
    expect(r.status).toBe(202);
  });
});

test('a payload signed by the standardwebhooks library is accepted', async () => {
  const wh = new Webhook(secret);
  const id = wid();
  const at = new Date();
  const raw = body('stdwh');
  const sig = wh.sign(id, at, raw);
  expect(sig).toMatch(/^v1,/);
  const r = await post(PARTNER, { 'webhook-id': id, 'webhook-timestamp': String(Math.floor(at.getTime() / 1000)), 'webhook-signature': sig }, raw);
  expect(r.status).toBe(202);
  expect(await desiredVersion('stdwh')).toBe('1');
});

describe('secret rotation', () => {
  test('after rotation both the old and the new secret verify; after the grace period only the new one', async () => {
    const pid = 'rotp';
    const oldSecret = await createPartner(svc, pid);
    const rot = await svc.api(`/v1/partners/${pid}/webhook-secret/rotate`, { method: 'POST' });
    expect(rot.status).toBe(200);
    const rj = (await rot.json()) as { webhookSecret: string; previousSecretValidUntil: string };
    const newSecret = rj.webhookSecret;
    expect(newSecret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    expect(newSecret).not.toBe(oldSecret);
    // Default grace: 24 h.
    const until = Date.parse(rj.previousSecretValidUntil) - Date.now();
    expect(until).toBeGreaterThan(23.9 * 3_600_000);
    expect(until).toBeLessThanOrEqual(24 * 3_600_000);

    expect((await sendEvent(svc, pid, oldSecret, undefined, { body: body('rot-old') })).status).toBe(202);
    expect((await sendEvent(svc, pid, newSecret, undefined, { body: body('rot-new') })).status).toBe(202);

    // Let the grace period run out: move the rotated secret's expiry into the past, as 24 h would.
    const key = svc.rt.keys.partner(pid);
    const secrets = JSON.parse((await svc.rt.redis.hget(key, 'secrets')) ?? '[]') as WebhookSecretRecord[];
    expect(secrets).toHaveLength(2);
    expect(secrets.filter((s) => s.expiresAt !== null)).toHaveLength(1);
    const expired = secrets.map((s) => (s.expiresAt !== null ? { ...s, expiresAt: new Date(Date.now() - 1000).toISOString() } : s));
    await svc.rt.redis.hset(key, 'secrets', JSON.stringify(expired));
    // A change made behind the API's back (here: straight into Redis) reaches an API process within
    // its 1 s partner cache; real expiry needs no wait (the cached expiresAt is compared with now).
    await new Promise((r) => setTimeout(r, 1100));

    await expectProblem(await sendEvent(svc, pid, oldSecret, undefined, { body: body('rot-old-late') }), 401);
    expect((await sendEvent(svc, pid, newSecret, undefined, { body: body('rot-new-late') })).status).toBe(202);
    expect(await desiredVersion('rot-old-late', pid)).toBeNull();
  });

  test('with SECRET_ROTATION_GRACE_HOURS=0 the old secret stops verifying at once', async () => {
    const s0 = await startService({ redis: svc.redis, env: { SECRET_ROTATION_GRACE_HOURS: '0' } });
    try {
      const pid = 'rot0';
      const oldSecret = await createPartner(s0, pid);
      expect((await sendEvent(s0, pid, oldSecret, undefined, { body: body('g0-before') })).status).toBe(202);
      const rot = await s0.api(`/v1/partners/${pid}/webhook-secret/rotate`, { method: 'POST' });
      expect(rot.status).toBe(200);
      const newSecret = ((await rot.json()) as { webhookSecret: string }).webhookSecret;
      await expectProblem(await sendEvent(s0, pid, oldSecret, undefined, { body: body('g0-old') }), 401);
      expect((await sendEvent(s0, pid, newSecret, undefined, { body: body('g0-new') })).status).toBe(202);
      expect(await desiredVersion('g0-old', pid, s0)).toBeNull();
      expect(await desiredVersion('g0-new', pid, s0)).toBe('1');
    } finally {
      await s0.close();
    }
  });

  test('concurrent rotations each keep their secret: every secret handed out verifies (no lost update)', async () => {
    const pid = 'rotc';
    const original = await createPartner(svc, pid);
    const rotations = await Promise.all(Array.from({ length: 8 }, () => svc.api(`/v1/partners/${pid}/webhook-secret/rotate`, { method: 'POST' })));
    expect(rotations.map((r) => r.status)).toEqual(Array(8).fill(200));
    const handedOut = await Promise.all(rotations.map(async (r) => ((await r.json()) as { webhookSecret: string }).webhookSecret));
    expect(new Set(handedOut).size).toBe(8);
    const bundle = (await svc.rt.partners.bundle(pid))!;
    // One current secret, every other one in its grace period: nothing overwritten.
    expect(bundle.secrets.filter((s) => s.expiresAt === null)).toHaveLength(1);
    expect(new Set(svc.rt.partners.activeSecrets(bundle).secrets)).toEqual(new Set([original, ...handedOut]));
    for (const [i, s] of [original, ...handedOut].entries()) expect((await sendEvent(svc, pid, s, undefined, { body: body(`rotc-${i}`) })).status).toBe(202);

    // The same straight at the repository, all reads issued before any write (as two API processes would).
    const more = Array.from({ length: 10 }, () => newWebhookSecret());
    await Promise.all(more.map((s) => svc.rt.partners.rotateSecret(pid, s, 3_600_000)));
    const b2 = (await svc.rt.partners.bundle(pid))!;
    expect(new Set(svc.rt.partners.activeSecrets(b2).secrets)).toEqual(new Set([original, ...handedOut, ...more]));
  });

  test('a partner create that died before the partner index was written is repaired by its retry (409, now listed)', async () => {
    const pid = 'halfmade';
    expect((await svc.api('/v1/partners', { json: { id: pid, name: 'Half made' } })).status).toBe(201);
    await svc.rt.redis.srem(svc.rt.keys.partnerIndex(), pid); // the process died between the two writes
    const list = async (): Promise<string[]> => ((await (await svc.api('/v1/partners')).json()) as { partners: { id: string }[] }).partners.map((p) => p.id);
    expect(await list()).not.toContain(pid);
    expect((await svc.api('/v1/partners', { json: { id: pid, name: 'Half made' } })).status).toBe(409);
    expect(await list()).toContain(pid);
  });

  test('rotating an unknown partner is 404', async () => {
    await expectProblem(await svc.api('/v1/partners/nope/webhook-secret/rotate', { method: 'POST' }), 404);
  });
});

describe('idempotency and routing', () => {
  test('a repeated webhook-id is 200 {duplicate:true} with the same eventId and no second change', async () => {
    const showId = 'dup1';
    const id = wid();
    const r1 = await sendEvent(svc, PARTNER, secret, undefined, { webhookId: id, body: body(showId) });
    expect(r1.status).toBe(202);
    const j1 = (await r1.json()) as { eventId: string; duplicate: boolean };
    expect(j1.duplicate).toBe(false);
    const vKey = svc.rt.keys.desired(PARTNER, showId);
    const v1 = await svc.rt.redis.hget(vKey, 'v');
    expect(v1).toBe('1');
    const eventsLen = await svc.rt.redis.xlen(svc.rt.keys.showEvents(PARTNER, showId));

    // Same id, same body (a plain redelivery).
    const r2 = await sendEvent(svc, PARTNER, secret, undefined, { webhookId: id, body: body(showId) });
    expect(r2.status).toBe(200);
    expect(await r2.json()).toEqual({ eventId: j1.eventId, webhookId: id, duplicate: true });

    // Same id, a later and different body: still the same event, nothing changes.
    const changed = JSON.stringify(showEvent('show.updated', sampleShow(showId, { title: 'Changed title' }), '2026-11-24T17:30:00Z'));
    const r3 = await sendEvent(svc, PARTNER, secret, undefined, { webhookId: id, body: changed });
    expect(r3.status).toBe(200);
    expect(await r3.json()).toEqual({ eventId: j1.eventId, webhookId: id, duplicate: true });

    expect(await svc.rt.redis.hget(vKey, 'v')).toBe(v1);
    expect(await svc.rt.redis.xlen(svc.rt.keys.showEvents(PARTNER, showId))).toBe(eventsLen);
    expect((await svc.rt.shows.desired(PARTNER, showId))?.title).toBe(`Show ${showId}`);
  });

  test('an unknown partner is 404 problem+json', async () => {
    const raw = body('ghost');
    const r = await sendEvent(svc, 'no-such-partner', secret, undefined, { body: raw });
    await expectProblem(r, 404);
    expect(await desiredVersion('ghost', 'no-such-partner')).toBeNull();
  });
});

/**
 * Changes a retry cannot redo keep their audit entry when the audit write after them fails (README
 * "Audit log": every change has exactly one entry, even if the audit write failed once). A revoked key,
 * a deleted target or endpoint used to lose it for good: the request answered 5xx after the change, and
 * its retry found the key revoked already (200, "not this call's revocation") or the target or endpoint
 * gone (404), and wrote nothing; so did a partner or target created (the retry: 409), and a key or
 * endpoint created (the retry made another; the first stayed listed with no entry). The change's
 * script now records its entry pending, and the retry writes it, once.
 * Since a later review the request that made the change no longer fails when writing its pending
 * entry fails (the change was made and its entry is stored with it): a 5xx there made clients retry
 * changes that were done (a second key or endpoint, a second rotation). Its entry reaches the log
 * with the next change of its scope, the next read of the log or the scheduler's minute tick, once.
 * The write fails for real: the audit stream is replaced by a key of another type, so XADD errors.
 */
import { jest } from '@jest/globals';
import { withWrongTypeKey } from '../helpers/wrong-type.js';
import { createPartner, sampleShow, sendEvent, serviceForFile, showEvent, type TestService } from '../helpers/service.js';

let svc: TestService;
serviceForFile((started) => (svc = started));

interface Entry {
  action: string;
  actor: { keyId: string };
  partnerId?: string;
  targetId?: string;
  requestId?: string;
  detail?: Record<string, unknown>;
}

async function entries(query: string): Promise<Entry[]> {
  const r = await svc.api(`/v1/audit?limit=500&${query}`);
  expect(r.status).toBe(200);
  return ((await r.json()) as { entries: Entry[] }).entries;
}

/** Runs `fn` while `stream` is a string (every XADD to it fails), then puts the stream back. */
const withBrokenStream = <T>(stream: string, fn: () => Promise<T>): Promise<T> => withWrongTypeKey(svc.rt.redis, stream, fn);

test('DELETE /v1/api-keys/:id whose audit write failed: the retry writes api_key.revoked, once', async () => {
  const created = await svc.api('/v1/api-keys', { json: { role: 'operator', name: 'leaving' } });
  expect(created.status).toBe(201);
  const { id, key } = (await created.json()) as { id: string; key: string };

  const failed = await withBrokenStream(svc.rt.keys.auditAll(), () => svc.api(`/v1/api-keys/${id}`, { method: 'DELETE', headers: { 'x-request-id': 'revoke-1' } }));
  expect(failed.status).toBe(200);
  expect((await svc.api('/v1/partners', { key })).status).toBe(401); // the revocation happened

  const retried = await svc.api(`/v1/api-keys/${id}`, { method: 'DELETE' });
  expect(retried.status).toBe(200);
  expect(((await retried.json()) as { status: string }).status).toBe('revoked');
  expect((await svc.api(`/v1/api-keys/${id}`, { method: 'DELETE' })).status).toBe(200); // again: no second entry

  const mine = (await entries('action=api_key.revoked')).filter((e) => e.detail?.['keyId'] === id);
  expect(mine).toHaveLength(1);
  expect(mine[0]).toMatchObject({ actor: { keyId: 'admin' }, requestId: 'revoke-1', detail: { keyId: id, role: 'operator', name: 'leaving' } });
});

describe('DELETE of a target whose audit write failed', () => {
  const P = 'aud-p';
  beforeAll(async () => {
    await createPartner(svc, P);
  });
  async function createTarget(id: string): Promise<void> {
    const r = await svc.api(`/v1/partners/${P}/targets?verify=false`, { json: { id, platform: 'youtube', name: id, credentials: { refreshToken: 'r' }, commissionRateBps: 500 } });
    expect(r.status).toBe(201);
  }

  test('the global stream failed: the retry (404) writes target.deleted in both streams, once', async () => {
    await createTarget('gone-1');
    const failed = await withBrokenStream(svc.rt.keys.auditAll(), () => svc.api(`/v1/partners/${P}/targets/gone-1`, { method: 'DELETE', headers: { 'x-request-id': 'del-1' } }));
    expect(failed.status).toBe(204);
    expect(await svc.rt.partners.getTarget(P, 'gone-1')).toBeNull(); // deleted

    expect((await svc.api(`/v1/partners/${P}/targets/gone-1`, { method: 'DELETE' })).status).toBe(404);
    expect((await svc.api(`/v1/partners/${P}/targets/gone-1`, { method: 'DELETE' })).status).toBe(404);
    for (const q of ['action=target.deleted&targetId=gone-1', `action=target.deleted&targetId=gone-1&partnerId=${P}`]) {
      const e = await entries(q);
      expect(e).toHaveLength(1);
      expect(e[0]).toMatchObject({ actor: { keyId: 'admin' }, partnerId: P, targetId: 'gone-1', requestId: 'del-1' });
    }
  });

  test("forced, the partner's stream failed: the next DELETE writes the partner's entry, the global one stays single", async () => {
    await createTarget('gone-2');
    const failed = await withBrokenStream(svc.rt.keys.audit(P), () => svc.api(`/v1/partners/${P}/targets/gone-2?force=true`, { method: 'DELETE', headers: { 'x-request-id': 'del-2' } }));
    expect(failed.status).toBe(204);
    expect(await svc.rt.partners.getTarget(P, 'gone-2')).toBeNull();

    expect((await svc.api(`/v1/partners/${P}/targets/gone-2?force=true`, { method: 'DELETE' })).status).toBe(404);
    for (const q of ['action=target.deleted&targetId=gone-2', `action=target.deleted&targetId=gone-2&partnerId=${P}`]) {
      const e = await entries(q);
      expect(e).toHaveLength(1);
      expect(e[0]).toMatchObject({ partnerId: P, targetId: 'gone-2', requestId: 'del-2' });
    }
  });
});

test('DELETE of an endpoint whose audit write failed: the retry (404) writes endpoint.deleted, once', async () => {
  const P = 'aud-ep';
  await createPartner(svc, P);
  const created = await svc.api(`/v1/partners/${P}/endpoints`, { json: { url: 'http://127.0.0.1:9/hook', events: ['mirror.updated'] } });
  expect(created.status).toBe(201);
  const { id } = (await created.json()) as { id: string };

  const failed = await withBrokenStream(svc.rt.keys.audit(P), () => svc.api(`/v1/partners/${P}/endpoints/${id}`, { method: 'DELETE', headers: { 'x-request-id': 'ep-del-1' } }));
  expect(failed.status).toBe(204);
  expect((await svc.api(`/v1/partners/${P}/endpoints/${id}`)).status).toBe(404); // deleted

  expect((await svc.api(`/v1/partners/${P}/endpoints/${id}`, { method: 'DELETE' })).status).toBe(404);
  expect((await svc.api(`/v1/partners/${P}/endpoints/${id}`, { method: 'DELETE' })).status).toBe(404);
  for (const q of ['action=endpoint.deleted', `action=endpoint.deleted&partnerId=${P}`]) {
    const e = (await entries(q)).filter((x) => x.detail?.['endpointId'] === id);
    expect(e).toHaveLength(1);
    expect(e[0]).toMatchObject({ partnerId: P, requestId: 'ep-del-1' });
  }
});

describe('a create whose audit write failed', () => {
  test('partner: the retry (409) writes partner.created, once', async () => {
    const body = { id: 'aud-new', name: 'New partner' };
    const failed = await withBrokenStream(svc.rt.keys.auditAll(), () => svc.api('/v1/partners', { json: body, headers: { 'x-request-id': 'p-new-1' } }));
    expect(failed.status).toBe(201);
    expect((await svc.api('/v1/partners/aud-new')).status).toBe(200); // created

    expect((await svc.api('/v1/partners', { json: body })).status).toBe(409);
    expect((await svc.api('/v1/partners', { json: body })).status).toBe(409);
    for (const q of ['action=partner.created', 'action=partner.created&partnerId=aud-new']) {
      const e = (await entries(q)).filter((x) => x.partnerId === 'aud-new');
      expect(e).toHaveLength(1);
      expect(e[0]).toMatchObject({ requestId: 'p-new-1' });
    }
  });

  test('target with its own id: the retry (409) writes target.created, once', async () => {
    const P = 'aud-tc';
    await createPartner(svc, P);
    const body = { id: 'made-1', platform: 'youtube', name: 'made', credentials: { refreshToken: 'r' }, commissionRateBps: 500 };
    const failed = await withBrokenStream(svc.rt.keys.audit(P), () => svc.api(`/v1/partners/${P}/targets?verify=false`, { json: body, headers: { 'x-request-id': 't-new-1' } }));
    expect(failed.status).toBe(201);
    expect(await svc.rt.partners.getTarget(P, 'made-1')).not.toBeNull(); // created

    expect((await svc.api(`/v1/partners/${P}/targets?verify=false`, { json: body })).status).toBe(409);
    for (const q of ['action=target.created&targetId=made-1', `action=target.created&targetId=made-1&partnerId=${P}`]) {
      const e = await entries(q);
      expect(e).toHaveLength(1);
      expect(e[0]).toMatchObject({ partnerId: P, requestId: 't-new-1' });
    }
  });

  test('API key: the key is shown (201, no retry making a second one) and its api_key.created is written by the next read, once', async () => {
    const failed = await withBrokenStream(svc.rt.keys.auditAll(), () => svc.api('/v1/api-keys', { json: { role: 'viewer', name: 'once' }, headers: { 'x-request-id': 'k-new-1' } }));
    expect(failed.status).toBe(201);
    const { id, key } = (await failed.json()) as { id: string; key: string };
    expect((await svc.api('/v1/partners', { key })).status).toBe(200); // the key shown works

    const keys = ((await (await svc.api('/v1/api-keys')).json()) as { keys: { id: string; name: string | null }[] }).keys.filter((k) => k.name === 'once');
    expect(keys.map((k) => k.id)).toEqual([id]);
    const created = await entries('action=api_key.created');
    expect(created.filter((e) => e.detail?.['keyId'] === id)).toHaveLength(1);
    expect(created.filter((e) => e.requestId === 'k-new-1')).toHaveLength(1);
    expect((await entries('action=api_key.created')).filter((e) => e.detail?.['keyId'] === id)).toHaveLength(1);
  });

  test('endpoint: the endpoint is shown with its secret (201, no retry making a second one) and its endpoint.created is written by the next read, once', async () => {
    const P = 'aud-ec';
    await createPartner(svc, P);
    const body = { url: 'http://127.0.0.1:9/hook', events: ['mirror.updated'] };
    const failed = await withBrokenStream(svc.rt.keys.audit(P), () => svc.api(`/v1/partners/${P}/endpoints`, { json: body, headers: { 'x-request-id': 'e-new-1' } }));
    expect(failed.status).toBe(201);

    const eps = ((await (await svc.api(`/v1/partners/${P}/endpoints`)).json()) as { endpoints: { id: string }[] }).endpoints;
    expect(eps.map((e) => e.id)).toEqual([((await failed.json()) as { id: string }).id]);
    for (const q of ['action=endpoint.created', `action=endpoint.created&partnerId=${P}`]) {
      const created = (await entries(q)).filter((e) => e.partnerId === P);
      for (const ep of eps) expect(created.filter((e) => e.detail?.['endpointId'] === ep.id)).toHaveLength(1);
      expect(created.filter((e) => e.requestId === 'e-new-1')).toHaveLength(1);
    }
  });
});

test('a webhook secret rotation whose audit write failed: answered with the new secret (no retry rotating again), its entry written once', async () => {
  const P = 'aud-rot';
  await createPartner(svc, P);
  const failed = await withBrokenStream(svc.rt.keys.audit(P), () => svc.api(`/v1/partners/${P}/webhook-secret/rotate`, { method: 'POST', headers: { 'x-request-id': 'rot-1' } }));
  expect(failed.status).toBe(200);
  for (const q of ['action=webhook_secret.rotated', `action=webhook_secret.rotated&partnerId=${P}`, `action=webhook_secret.rotated&partnerId=${P}`]) {
    const e = (await entries(q)).filter((x) => x.partnerId === P);
    expect(e.map((x) => x.requestId)).toEqual(['rot-1']);
  }
});

// Review of the pending entries: they were written only by a later change of the same scope, and one
// entry that could not be written made every later change of its scope a 5xx (settle stopped at it).
describe('pending entries nobody retried, and one that cannot be written', () => {
  const P = 'aud-q';
  beforeAll(async () => {
    await createPartner(svc, P);
  });
  async function createTarget(id: string): Promise<void> {
    const r = await svc.api(`/v1/partners/${P}/targets?verify=false`, { json: { id, platform: 'youtube', name: id, credentials: { refreshToken: 'r' }, commissionRateBps: 500 } });
    expect(r.status).toBe(201);
  }

  test('a delete whose entry could not be written then is in the log at the next read of it', async () => {
    await createTarget('quiet-1');
    const failed = await withBrokenStream(svc.rt.keys.audit(P), () => svc.api(`/v1/partners/${P}/targets/quiet-1`, { method: 'DELETE', headers: { 'x-request-id': 'quiet-del' } }));
    expect(failed.status).toBe(204);
    // No retry, no other change of the partner: the read writes what is pending first.
    const mine = (await entries(`partnerId=${P}&action=target.deleted`)).filter((e) => e.targetId === 'quiet-1');
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({ requestId: 'quiet-del' });
    expect(await svc.rt.redis.hlen(svc.rt.keys.auditPending({ partnerId: P }))).toBe(0);
  });

  test("the scheduler's minute tick (settleAll) writes what is pending in every scope", async () => {
    await createTarget('quiet-2');
    const failed = await withBrokenStream(svc.rt.keys.audit(P), () => svc.api(`/v1/partners/${P}/targets/quiet-2`, { method: 'DELETE' }));
    expect(failed.status).toBe(204);
    expect(await svc.rt.redis.hlen(svc.rt.keys.auditPending({ partnerId: P }))).toBe(1);
    const { written, failed: stuck, scopesFailed } = await svc.rt.audit.settleAll([P]);
    expect({ written, stuck, scopesFailed }).toEqual({ written: 1, stuck: [], scopesFailed: [] });
    expect(await svc.rt.redis.hlen(svc.rt.keys.auditPending({ partnerId: P }))).toBe(0);
    expect((await entries(`partnerId=${P}&action=target.deleted`)).filter((e) => e.targetId === 'quiet-2')).toHaveLength(1);
  });

  test("settleAll: a scope whose write fails is reported, the partners after it are settled all the same", async () => {
    const Q = 'aud-q2';
    await createPartner(svc, Q);
    await createTarget('tick-1');
    const r = await svc.api(`/v1/partners/${Q}/targets?verify=false`, { json: { id: 'tick-2', platform: 'youtube', name: 'tick-2', credentials: { refreshToken: 'r' }, commissionRateBps: 500 } });
    expect(r.status).toBe(201);
    expect((await withBrokenStream(svc.rt.keys.audit(Q), () => svc.api(`/v1/partners/${Q}/targets/tick-2`, { method: 'DELETE' }))).status).toBe(204);
    const tick = await withBrokenStream(svc.rt.keys.audit(P), async () => {
      expect((await svc.api(`/v1/partners/${P}/targets/tick-1`, { method: 'DELETE' })).status).toBe(204);
      return svc.rt.audit.settleAll([P, Q]); // P's stream still broken: P fails, Q is written
    });
    expect({ written: tick.written, scopes: tick.scopesFailed.map((f) => f.scope) }).toEqual({ written: 1, scopes: [{ partnerId: P }] });
    expect(await svc.rt.redis.hlen(svc.rt.keys.auditPending({ partnerId: Q }))).toBe(0);
    expect(await svc.rt.redis.hlen(svc.rt.keys.auditPending({ partnerId: P }))).toBe(1);
    expect((await svc.rt.audit.settleAll([P, Q])).written).toBe(1);
    expect((await entries(`partnerId=${P}&action=target.deleted`)).filter((e) => e.targetId === 'tick-1')).toHaveLength(1);
    expect((await entries(`partnerId=${Q}&action=target.deleted`)).filter((e) => e.targetId === 'tick-2')).toHaveLength(1);
  });

  test('an unreadable pending entry stays pending; the changes of its scope go on and are audited', async () => {
    await createTarget('stuck-1');
    const pending = svc.rt.keys.auditPending({ partnerId: P });
    await svc.rt.redis.hset(pending, 'aud_garbage', 'not json');
    const del = await svc.api(`/v1/partners/${P}/targets/stuck-1`, { method: 'DELETE' });
    expect(del.status).toBe(204);
    expect((await entries(`partnerId=${P}&action=target.deleted`)).filter((e) => e.targetId === 'stuck-1')).toHaveLength(1);
    expect(await svc.rt.redis.hget(pending, 'aud_garbage')).toBe('not json');
    await svc.rt.redis.hdel(pending, 'aud_garbage');
  });
});

// The same for the endpoint's and the show's own secrets: their rotation was audited by a write after
// it, which failed with a 5xx and lost the entry for good; the retry (another rotation) left the first
// one, a secret that signs or publishes and was never shown, with no entry at all.
describe("rotations in an endpoint's or a show's slot", () => {
  test('an endpoint secret rotation whose audit write failed: answered with the new secret, a read of the log writes its entry once', async () => {
    const P = 'aud-erot';
    await createPartner(svc, P);
    const created = await svc.api(`/v1/partners/${P}/endpoints`, { json: { url: 'http://127.0.0.1:9/hook', events: ['mirror.updated'] } });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    const before = (await svc.rt.redis.hget(svc.rt.keys.endpoint(P, id), 'secretSealed')) ?? '';

    const failed = await withBrokenStream(svc.rt.keys.audit(P), () => svc.api(`/v1/partners/${P}/endpoints/${id}/rotate-secret`, { method: 'POST', headers: { 'x-request-id': 'erot-1' } }));
    expect(failed.status).toBe(200); // the change is made and its entry stored with it: no retry rotating again
    expect(await svc.rt.redis.hget(svc.rt.keys.endpoint(P, id), 'previousSecretSealed')).toBe(before); // rotated

    // No other change: the next read of the partner's log writes it.
    const mine = async (q: string): Promise<(string | undefined)[]> => (await entries(q)).filter((e) => e.detail?.['endpointId'] === id).map((e) => e.requestId).sort();
    expect(await mine(`partnerId=${P}&action=endpoint.secret_rotated`)).toEqual(['erot-1']);

    expect((await svc.api(`/v1/partners/${P}/endpoints/${id}/rotate-secret`, { method: 'POST', headers: { 'x-request-id': 'erot-2' } })).status).toBe(200);
    for (const q of [`partnerId=${P}&action=endpoint.secret_rotated`, 'action=endpoint.secret_rotated']) expect(await mine(q)).toEqual(['erot-1', 'erot-2']);
    expect(await svc.rt.redis.hlen(svc.rt.keys.auditPending({ partnerId: P, endpointId: id }))).toBe(0);
  });

  test("a show's ingest key rotation whose audit write failed: answered with the new key, the scheduler's tick writes its entry once", async () => {
    const P = 'aud-irot';
    const secret = await createPartner(svc, P);
    expect((await sendEvent(svc, P, secret, showEvent('show.scheduled', sampleShow('s-irot'), '2026-11-24T10:00:00Z'))).status).toBe(202);
    const rotate = (requestId: string): Promise<Response> => svc.api(`/v1/partners/${P}/shows/s-irot/ingest/rotate`, { method: 'POST', headers: { 'x-request-id': requestId } });
    const keyBefore = await svc.rt.relay.ingestKey(P, 's-irot');

    const failed = await withBrokenStream(svc.rt.keys.auditAll(), () => rotate('irot-1'));
    expect(failed.status).toBe(200);
    const { ingest } = (await failed.json()) as { ingest: { streamKey: string } };
    expect(await svc.rt.relay.ingestKey(P, 's-irot')).toBe(ingest.streamKey); // rotated: the old key is refused
    expect(ingest.streamKey).not.toBe(keyBefore);

    // Nobody read the log, no other change: the minute tick writes it.
    const { written, failed: stuck, scopesFailed } = await svc.rt.audit.settleAll([P]);
    expect({ written, stuck, scopesFailed }).toEqual({ written: 1, stuck: [], scopesFailed: [] });
    expect((await svc.rt.audit.settleAll([P])).written).toBe(0);

    expect((await rotate('irot-2')).status).toBe(200);
    for (const q of [`partnerId=${P}&action=show.ingest_rotated`, 'action=show.ingest_rotated']) {
      const e = (await entries(q)).filter((x) => x.partnerId === P);
      expect(e.map((x) => x.requestId).sort()).toEqual(['irot-1', 'irot-2']);
      expect(e.every((x) => (x as Entry & { showId?: string }).showId === 's-irot')).toBe(true);
    }
  });

  test('an endpoint DELETE retried after the process died between the index and the record: endpoint.deleted once', async () => {
    const P = 'aud-edel';
    await createPartner(svc, P);
    const created = await svc.api(`/v1/partners/${P}/endpoints`, { json: { url: 'http://127.0.0.1:9/hook', events: ['mirror.updated'] } });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    const record = svc.rt.keys.endpoint(P, id);
    const fields = await svc.rt.redis.hgetall(record);

    // The first DELETE took the endpoint out of the index (its entry recorded pending, not written: the
    // stream is broken); its process died before it deleted the record (put back here), so the client's
    // retry finds the record and deletes it (204).
    await withBrokenStream(svc.rt.keys.audit(P), () => svc.api(`/v1/partners/${P}/endpoints/${id}`, { method: 'DELETE', headers: { 'x-request-id': 'edel-1' } }));
    await svc.rt.redis.hset(record, fields);

    expect((await svc.api(`/v1/partners/${P}/endpoints/${id}`, { method: 'DELETE', headers: { 'x-request-id': 'edel-2' } })).status).toBe(204);
    expect((await svc.api(`/v1/partners/${P}/endpoints/${id}`, { method: 'DELETE' })).status).toBe(404);
    for (const q of [`partnerId=${P}&action=endpoint.deleted`, 'action=endpoint.deleted']) {
      const e = (await entries(q)).filter((x) => x.detail?.['endpointId'] === id);
      expect(e.map((x) => x.requestId)).toEqual(['edel-1']);
    }
  });
});

test('a reconciliation request whose audit write failed: 202 (no retry requesting a second run), its entry written once by the next read', async () => {
  const P = 'aud-rec';
  await createPartner(svc, P);
  const body = { from: '2026-11-01T00:00:00Z', to: '2026-11-02T00:00:00Z' };
  const r = await withBrokenStream(svc.rt.keys.audit(P), () => svc.api(`/v1/partners/${P}/reconciliations`, { json: body, headers: { 'x-request-id': 'rec-1' } }));
  expect(r.status).toBe(202); // the run is made, listed and queued, and its entry stored with it
  const { id } = (await r.json()) as { id: string };
  for (const q of [`partnerId=${P}&action=reconciliation.requested`, `partnerId=${P}&action=reconciliation.requested`, 'action=reconciliation.requested']) {
    const e = (await entries(q)).filter((x) => x.partnerId === P);
    expect(e.map((x) => [x.requestId, x.detail?.['reconciliationId']])).toEqual([['rec-1', id]]);
  }
});

// Review of 1363fea: a scope was announced with the API host's clock and forgotten by the settling
// host's: an API host 20 minutes slow had its scope forgotten at the next settle, before its rotation's
// entry was there, and that entry then waited for the next change of the same endpoint. Both on Redis's clock now.
test("an endpoint scope announced by a host whose clock is slow is not forgotten before its entry is written", async () => {
  const P = 'aud-skew';
  await createPartner(svc, P);
  const scope = { partnerId: P, endpointId: 'ep_skewed' };
  const realNow = Date.now;
  const spy = jest.spyOn(Date, 'now').mockImplementation(() => realNow() - 20 * 60_000);
  try {
    await svc.rt.audit.announce(scope);
  } finally {
    spy.mockRestore();
  }
  await svc.rt.audit.settle({ partnerId: P }); // nothing pending yet: the scope must stay on the list
  // The rotation's own script records its entry (here written as that script writes it).
  const pending = svc.rt.audit.pending({ keyId: 'admin', role: 'admin' }, { action: 'endpoint.secret_rotated', partnerId: P, detail: { endpointId: 'ep_skewed' } });
  await svc.rt.redis.hset(svc.rt.keys.auditPending(scope), pending.id, pending.entry);
  expect((await svc.rt.audit.settle({ partnerId: P })).written).toBe(1);
  // Kept while announced within 15 minutes of Redis's clock, forgotten after.
  const list = svc.rt.keys.auditPendingScopes(P);
  expect(await svc.rt.redis.zscore(list, 'e:ep_skewed')).not.toBeNull();
  const [sec] = await svc.rt.redis.time();
  await svc.rt.redis.zadd(list, Number(sec) * 1000 - 16 * 60_000, 'e:ep_skewed');
  await svc.rt.audit.settle({ partnerId: P });
  expect(await svc.rt.redis.zscore(list, 'e:ep_skewed')).toBeNull();
});

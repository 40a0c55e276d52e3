/**
 * This deployment's video relay over the admin API (README "Video relay"): the relay is part of the
 * deployment from a relay process's first pass on, and stays so when its heartbeat lapses (mirrors then
 * wait for video: "relay not running"); only DELETE /v1/relay takes it out, and only while no relay
 * process runs. Real Redis; the heartbeat is written as a relay pass writes it.
 */
import { serviceForFile, waitFor, type TestService } from '../helpers/service.js';

let svc: TestService;
serviceForFile((started) => (svc = started));

async function presence(key?: string): Promise<{ status: number; body: { deployed: boolean; since: string | null; running: boolean } }> {
  const r = await svc.api('/v1/relay', key ? { key } : {});
  return { status: r.status, body: (await r.json()) as { deployed: boolean; since: string | null; running: boolean } };
}

test('the relay stays part of the deployment when its heartbeat lapses; an admin takes it out once none runs', async () => {
  expect((await presence()).body).toEqual({ deployed: false, since: null, running: false });

  await svc.rt.relay.heartbeat(400); // a relay pass
  const up = (await presence()).body;
  expect(up).toMatchObject({ deployed: true, running: true });
  expect(Date.parse(up.since ?? '')).toBeGreaterThan(Date.now() - 60_000);

  const refused = await svc.api('/v1/relay', { method: 'DELETE' });
  expect(refused.status).toBe(409);
  expect(refused.headers.get('content-type')).toContain('application/problem+json');

  // The heartbeat lapses (Redis outage, every relay process restarting): still part of the deployment.
  const lapsed = await waitFor(async () => {
    const p = (await presence()).body;
    return p.running ? undefined : p;
  }, 5_000);
  expect(lapsed).toEqual({ deployed: true, since: up.since, running: false });

  const op = (await (await svc.api('/v1/api-keys', { json: { role: 'operator' } })).json()) as { key: string };
  expect((await presence(op.key)).status).toBe(403);
  expect((await svc.api('/v1/relay', { method: 'DELETE', key: op.key })).status).toBe(403);

  const removed = await svc.api('/v1/relay', { method: 'DELETE' });
  expect(removed.status).toBe(200);
  expect(await removed.json()).toEqual({ deployed: false, since: null, running: false });
  expect((await svc.api('/v1/relay', { method: 'DELETE' })).status).toBe(200); // again: unchanged
  const audit = (await (await svc.api('/v1/audit?action=relay.')).json()) as { entries: { action: string; detail: { since: string } }[] };
  expect(audit.entries.map((e) => [e.action, e.detail.since])).toEqual([['relay.removed', up.since]]);
});

// Found against npm start: DELETEs at once each read the relay deployed before any removed it, and
// each wrote a relay.removed entry. The marker is taken away by a compare-and-delete: one entry.
test('DELETE /v1/relay at once, relay stopped: one removal, one audit entry, every answer 200 and not deployed', async () => {
  await svc.rt.relay.heartbeat(300);
  const up = (await presence()).body;
  expect(up.deployed).toBe(true);
  await waitFor(async () => !(await presence()).body.running, 5_000);
  const rs = await Promise.all(Array.from({ length: 8 }, () => svc.api('/v1/relay', { method: 'DELETE' })));
  expect(rs.map((r) => r.status)).toEqual(Array(8).fill(200));
  for (const r of rs) expect(await r.json()).toEqual({ deployed: false, since: null, running: false });
  const audit = (await (await svc.api('/v1/audit?action=relay.removed&limit=500')).json()) as { entries: { detail: { since: string } }[] };
  expect(audit.entries.filter((e) => e.detail.since === up.since)).toHaveLength(1);
});

// The removal was a compare-and-delete and its audit entry a separate write: when that write failed
// (here: the audit stream is a string, so XADD fails) the client got a 5xx, its retry found the relay
// already gone ("absent", 200) and relay.removed was never written. The removal is now recorded as not
// yet audited by the same script, and the retry writes the entry (once, naming who removed it).
test('DELETE /v1/relay whose audit write failed: the retry writes relay.removed, once', async () => {
  await svc.rt.relay.heartbeat(300);
  const up = (await presence()).body;
  expect(up.deployed).toBe(true);
  await waitFor(async () => !(await presence()).body.running, 5_000);
  const auditAll = svc.rt.keys.auditAll();
  const saved = `${auditAll}-saved`; // same slot
  await svc.rt.redis.rename(auditAll, saved);
  await svc.rt.redis.set(auditAll, 'not a stream');
  const failed = await svc.api('/v1/relay', { method: 'DELETE', headers: { 'x-request-id': 'relay-removal-1' } });
  expect(failed.status).toBeGreaterThanOrEqual(500);
  expect((await presence()).body.deployed).toBe(false); // the removal happened
  await svc.rt.redis.rename(saved, auditAll);

  const retried = await svc.api('/v1/relay', { method: 'DELETE' });
  expect(retried.status).toBe(200);
  expect(await retried.json()).toEqual({ deployed: false, since: null, running: false });
  expect((await svc.api('/v1/relay', { method: 'DELETE' })).status).toBe(200); // again: no second entry
  const audit = (await (await svc.api('/v1/audit?action=relay.removed&limit=500')).json()) as { entries: { actor: { keyId: string }; requestId: string; detail: { since: string } }[] };
  const entries = audit.entries.filter((e) => e.detail.since === up.since);
  expect(entries).toHaveLength(1);
  expect(entries[0]?.actor.keyId).toBe('admin');
  expect(entries[0]?.requestId).toBe('relay-removal-1'); // the request that removed it
});

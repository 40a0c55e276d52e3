/**
 * OutboundService's messages and endpoints in the store, no delivery worker: the endpoint list each emit
 * reads (cached, yet every change seen at once), an endpoint's failure clock with attempts that overlap,
 * a message made only when someone subscribes, idempotency keys built from ids with ':' and per partner.
 * Once four files (endpoint.cache, endpoint.failure-clock, outbound.emit-made, outbound.idem-colon),
 * each of which started its own redis-server and service for two to four cases (CI time:
 * docs/testing.md). One service for all, with startService's defaults (the api role and the sync
 * dispatcher); each former file is a `describe` of its own, with its own partners (epc, epc2, efc,
 * efc-api, em1, em2, oc, oc2) and reads only what it made. Real redis-server.
 */
import pino from 'pino';
import { newMirror } from '../../src/domain/mirror.js';
import { readinessUpdatedKey } from '../../src/mirror/readiness.service.js';
import { mirrorUpdatedKey, relayUpdatedHook } from '../../src/outbound/mirror-updated.js';
import type { EmitResult } from '../../src/outbound/outbound.service.js';
import { DestinationSupervisor } from '../../src/relay/destination.supervisor.js';
import { UNOWNED_ERROR, type RelayStatus } from '../../src/store/relay.repository.js';
import { createPartner, serviceForFile, type TestService } from '../helpers/service.js';

let svc: TestService;
serviceForFile((started) => (svc = started));

describe('endpoint.cache', () => {
  /**
   * OutboundService.emit reads the partner's endpoints through EndpointRepository.listCached (a list at
   * most ENDPOINT_LIST_CACHE_MS old): every change made through the repository is seen by the very next
   * emit of this process — a new endpoint receives it, a disabled, unsubscribed or deleted one does not.
   * Real redis-server.
   */
  const P = 'epc';


  const emit = (key: string) => svc.rt.outbound.emit(P, 'attribution.order_attributed', { orderId: key }, key);

  test('each endpoint change is seen by the next emit at once', async () => {
    expect(await emit('k0')).toEqual({ messageId: null, duplicate: false, endpointIds: [] });
    // (the empty list is now cached)
    const { endpoint: a } = await svc.rt.outbound.createEndpoint(P, { url: 'http://127.0.0.1:9/a', events: ['attribution.order_attributed'] });
    expect((await emit('k1')).endpointIds).toEqual([a.id]);
    const { endpoint: b } = await svc.rt.outbound.createEndpoint(P, { url: 'http://127.0.0.1:9/b', events: ['mirror.updated'] });
    expect((await emit('k2')).endpointIds).toEqual([a.id]);
    expect(await svc.rt.outbound.endpoints.update(P, b.id, { events: ['mirror.updated', 'attribution.order_attributed'] })).toBe(true);
    expect((await emit('k3')).endpointIds.sort()).toEqual([a.id, b.id].sort());
    expect(await svc.rt.outbound.endpoints.disable(P, a.id, 'test')).toBe(true);
    expect((await emit('k4')).endpointIds).toEqual([b.id]);
    expect(await svc.rt.outbound.endpoints.update(P, a.id, { enabled: true })).toBe(true);
    expect((await emit('k5')).endpointIds.sort()).toEqual([a.id, b.id].sort());
    // the delivery worker's disable (no success since the failure clock started)
    await svc.rt.outbound.endpoints.recordFailure(P, a.id, Date.now() - 10_000);
    expect(await svc.rt.outbound.endpoints.disableIfFailingSince(P, a.id, Date.now() - 5_000, 'failing')).toBe(true);
    expect((await emit('k6')).endpointIds).toEqual([b.id]);
    expect(await svc.rt.outbound.endpoints.delete(P, b.id)).toBe(true);
    expect(await emit('k7')).toEqual({ messageId: null, duplicate: false, endpointIds: [] });
  });

  test('the cached list is the stored list', async () => {
    const { endpoint } = await svc.rt.outbound.createEndpoint('epc2', { url: 'http://127.0.0.1:9/c', events: ['mirror.updated'] });
    const cached = await svc.rt.outbound.endpoints.listCached('epc2');
    expect(cached).toEqual(await svc.rt.outbound.endpoints.list('epc2'));
    expect(cached.map((e) => e.id)).toEqual([endpoint.id]);
    expect(await svc.rt.outbound.endpoints.listCached('epc2')).toBe(cached); // served from the cache
    expect(await svc.rt.outbound.rotateSecret('epc2', endpoint.id)).toMatchObject({ secret: expect.stringMatching(/^whsec_/) });
    const after = await svc.rt.outbound.endpoints.listCached('epc2');
    expect(after).not.toBe(cached); // the rotation dropped the entry
    expect(after[0]!.secretSealed).not.toBe(cached[0]!.secretSealed);
  });
});

describe('endpoint.failure-clock', () => {
  /**
   * An endpoint's failure clock (`failingSince`, src/store/outbound.scripts.ts) with attempts that overlap:
   * a delivery worker runs many attempts to one endpoint at once, and an attempt's outcome is recorded
   * when it ends, with the time it started. The clock decides whether an exhausted delivery disables the
   * endpoint ("no 2xx since the delivery's first attempt"), so:
   * - a failure of an attempt that started before a later-started attempt succeeded does not start it
   *   (the endpoint answered 2xx after that attempt began: it works);
   * - a success of an attempt that started before the clock started does not stop it (it says nothing
   *   about the failures after its start).
   * Real redis-server.
   */
  const P = 'efc';


  async function newEndpoint(partnerId = P): Promise<string> {
    const { endpoint } = await svc.rt.outbound.createEndpoint(partnerId, { url: 'http://127.0.0.1:9/hook', events: ['attribution.order_attributed'] });
    return endpoint.id;
  }

  async function failingSince(id: string): Promise<number | null> {
    return (await svc.rt.outbound.endpoints.get(P, id))!.failingSince;
  }

  test('a failed attempt that began before a later-begun attempt succeeded does not start the clock, nor disable the endpoint', async () => {
    const endpoints = svc.rt.outbound.endpoints;
    const id = await newEndpoint();
    const t0 = Date.now() - 60_000;
    // Attempt A begins at t0 + 10 s and hangs; attempt B begins at t0 + 20 s and gets a 2xx; A then times out.
    await endpoints.recordSuccess(P, id, new Date(t0 + 20_000));
    await endpoints.recordFailure(P, id, t0 + 10_000);
    expect(await failingSince(id)).toBeNull();
    expect(await endpoints.disableIfFailingSince(P, id, t0, 'no 2xx since t0')).toBe(false);
    expect((await endpoints.get(P, id))!.enabled).toBe(true);
    // A failure of an attempt that began after the success does start it.
    await endpoints.recordFailure(P, id, t0 + 30_000);
    expect(await failingSince(id)).toBe(t0 + 30_000);
  });

  test('a success of an attempt that began before the clock started does not stop it', async () => {
    const endpoints = svc.rt.outbound.endpoints;
    const id = await newEndpoint();
    const t0 = Date.now() - 60_000;
    // Attempt A begins at t0 and is slow; attempt B begins at t0 + 10 s and fails; A then gets its 2xx.
    await endpoints.recordFailure(P, id, t0 + 10_000);
    await endpoints.recordSuccess(P, id, new Date(t0));
    expect(await failingSince(id)).toBe(t0 + 10_000);
    expect(await endpoints.disableIfFailingSince(P, id, t0 + 10_000, 'no 2xx since t0 + 10 s')).toBe(true);
    // A success that began after the clock started stops it.
    const other = await newEndpoint();
    await endpoints.recordFailure(P, other, t0 + 10_000);
    await endpoints.recordSuccess(P, other, new Date(t0 + 20_000));
    expect(await failingSince(other)).toBeNull();
  });

  test('an operator who enables a disabled endpoint again starts it with no failure clock (the API shows failingSince null, not last week)', async () => {
    const p = 'efc-api';
    await createPartner(svc, p);
    const id = await newEndpoint(p);
    const since = Date.now() - 7 * 86_400_000;
    await svc.rt.outbound.endpoints.recordFailure(p, id, since);
    expect(await svc.rt.outbound.endpoints.disableIfFailingSince(p, id, since, 'no 2xx for a week')).toBe(true);
    expect(await (await svc.api(`/v1/partners/${p}/endpoints/${id}`)).json()).toMatchObject({ enabled: false, failingSince: new Date(since).toISOString() });
    const patched = await svc.api(`/v1/partners/${p}/endpoints/${id}`, { method: 'PATCH', json: { enabled: true } });
    expect(patched.status).toBe(200);
    expect(await patched.json()).toMatchObject({ enabled: true, disabledReason: null, failingSince: null });
    expect((await svc.rt.outbound.endpoints.get(p, id))!.failingSince).toBeNull();
  });
});

describe('outbound.emit-made', () => {
  /**
   * OutboundService.emitMade: the payload and idempotency key of a message are made only when an enabled
   * endpoint subscribes to its type (every sync reports its mirror change; most partners' syncs have
   * nobody to tell, and the key is a SHA-256 over the payload). With a subscriber it is emit(): one
   * message per key. Real redis-server.
   */
  beforeAll(async () => {
    await createPartner(svc, 'em1');
    await createPartner(svc, 'em2');
    const r = await svc.api('/v1/partners/em2/endpoints', { json: { url: 'http://127.0.0.1:9/hook', events: ['mirror.updated'], description: 'test' } });
    expect(r.status).toBe(201);
  }, 60_000);

  test('nobody subscribes: nothing is made, nothing stored', async () => {
    let made = 0;
    const r = await svc.rt.outbound.emitMade('em1', 'mirror.updated', () => {
      made += 1;
      return { data: { x: 1 }, idempotencyKey: 'k1' };
    });
    expect(r).toEqual({ messageId: null, duplicate: false, endpointIds: [] });
    expect(made).toBe(0);
  });

  test('an endpoint subscribes: the message is made once and stored under its key (a second emit is its duplicate)', async () => {
    let made = 0;
    const make = () => {
      made += 1;
      return { data: { x: 2 }, idempotencyKey: 'k2' };
    };
    const first = await svc.rt.outbound.emitMade('em2', 'mirror.updated', make);
    const again = await svc.rt.outbound.emit('em2', 'mirror.updated', { x: 2 }, 'k2');
    expect(made).toBe(1);
    expect(first.messageId).not.toBeNull();
    expect(first.duplicate).toBe(false);
    expect(again).toMatchObject({ messageId: first.messageId, duplicate: true });
    expect(first.endpointIds).toHaveLength(1);
  });
});

describe('outbound.idem-colon', () => {
  /**
   * Outbound idempotency keys built from several ids (review 2026-12-01 K2): they joined the ids with ':'
   * and their hash covers the state only, so one partner's show `a:b` + target `c` and show `a` + target
   * `b:c` claimed one key and the second mirror's mirror.updated was taken for a duplicate, never sent.
   * Each id is now written as keyPart; for ids without '%', ':', '{', '}' the key is the one of before
   * (a message claimed before an upgrade is not sent again). Real redis-server.
   */
  beforeAll(async () => {
    await createPartner(svc, 'oc');
    const r = await svc.api('/v1/partners/oc/endpoints', { json: { url: 'http://127.0.0.1:9/hook', events: ['mirror.updated'], description: 'test' } });
    expect(r.status).toBe(201);
  }, 60_000);

  test("the relay's mirror.updated of show a:b / target c and of show a / target b:c are two messages", async () => {
    const results: EmitResult[] = [];
    const hook = relayUpdatedHook({
      emit: async (...args) => {
        const r = await svc.rt.outbound.emit(...args);
        results.push(r);
        return r;
      },
    });
    const status = { state: 'sending' as const, bitrateKbps: 0, bytesSent: 0, since: '2026-12-01T12:00:00.000Z', restarts: 0, lastError: null };
    await hook('oc', 'a:b', newMirror('c', 'youtube'), status, { enabled: true });
    await hook('oc', 'a', newMirror('b:c', 'youtube'), status, { enabled: true });
    expect(results.map((r) => r.duplicate)).toEqual([false, false]);
    expect(results[0]!.messageId).not.toBe(results[1]!.messageId);
  });

  test('the keys of ids without special characters are those of before; with ":" they differ per split', () => {
    expect(readinessUpdatedKey('p', 's', 't', 'f')).toBe('readiness:p:s:t:f');
    expect(readinessUpdatedKey('p', 'a:b', 'c', 'f')).not.toBe(readinessUpdatedKey('p', 'a', 'b:c', 'f'));
    expect(readinessUpdatedKey('p:a', 'b', 'c', 'f')).not.toBe(readinessUpdatedKey('p', 'a:b', 'c', 'f'));
    const m = newMirror('t', 'youtube');
    expect(mirrorUpdatedKey('p', 's', m)).toMatch(/^mirror:p:s:t:[A-Za-z0-9_-]{22}$/);
  });

  test("idempotency keys are per partner: another partner's emit with the same key is a message of its own, not a duplicate", async () => {
    await createPartner(svc, 'oc2');
    const r = await svc.api('/v1/partners/oc2/endpoints', { json: { url: 'http://127.0.0.1:9/hook', events: ['mirror.updated'], description: 'test' } });
    expect(r.status).toBe(201);
    // e.g. `order_attributed:<order id>`: two partners may well have an order 1001.
    const a = await svc.rt.outbound.emit('oc', 'mirror.updated', { showId: 'a' }, 'same-key-1001');
    const b = await svc.rt.outbound.emit('oc2', 'mirror.updated', { showId: 'b' }, 'same-key-1001');
    expect([a.duplicate, b.duplicate]).toEqual([false, false]);
    expect(b.messageId).not.toBe(a.messageId);
    expect((await svc.rt.outbound.message('oc2', b.messageId!))?.data).toEqual({ showId: 'b' });
    // The same key again is the same message, for each partner.
    expect(await svc.rt.outbound.emit('oc2', 'mirror.updated', { showId: 'b' }, 'same-key-1001')).toMatchObject({ messageId: b.messageId, duplicate: true });
  });

  test("a destination stopped twice alike (close(): at its grace's end, then by release) reports twice, and mirror.updated goes out once", async () => {
    // DestinationSupervisor.setState reports a stop whose lastError is given even when nothing changed; the
    // message is one all the same because relayUpdatedHook's key covers state, since, restarts and
    // lastError, and `since` moves only when the state does (a report that failed, Redis unreachable at the
    // grace's end, is sent by the second).
    const reports: RelayStatus[] = [];
    const sup = new DestinationSupervisor({ input: 'rtmp://127.0.0.1:9/live/x', output: 'rtmp://127.0.0.1:9/out', secrets: [] }, { ffmpeg: 'ffmpeg', log: pino({ level: 'silent' }), stallMs: 1000, mayStart: async () => false, onStateChange: (s) => reports.push(s) });
    await sup.stop('idle', UNOWNED_ERROR);
    await new Promise((r) => setTimeout(r, 5)); // a later stop must not stamp a new `since`
    await sup.stop('idle', UNOWNED_ERROR);
    expect(reports).toHaveLength(2);
    const results: EmitResult[] = [];
    const hook = relayUpdatedHook({ emit: async (...args) => results[results.push(await svc.rt.outbound.emit(...args)) - 1]! });
    for (const s of reports) await hook('oc', 'twice', newMirror('tw', 'youtube'), s, { enabled: true });
    expect(results.map((r) => r.duplicate)).toEqual([false, true]);
    expect(results[1]!.messageId).toBe(results[0]!.messageId);
  });
});

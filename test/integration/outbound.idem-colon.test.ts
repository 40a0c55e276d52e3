/**
 * Outbound idempotency keys built from several ids (review 2026-12-01 K2): they joined the ids with ':'
 * and their hash covers the state only, so one partner's show `a:b` + target `c` and show `a` + target
 * `b:c` claimed one key and the second mirror's mirror.updated was taken for a duplicate, never sent.
 * Each id is now written as keyPart; for ids without '%', ':', '{', '}' the key is the one of before
 * (a message claimed before an upgrade is not sent again). Real redis-server.
 */
import pino from 'pino';
import { newMirror } from '../../src/domain/mirror.js';
import { readinessUpdatedKey } from '../../src/mirror/readiness.service.js';
import { mirrorUpdatedKey, relayUpdatedHook } from '../../src/outbound/mirror-updated.js';
import type { EmitResult } from '../../src/outbound/outbound.service.js';
import { DestinationSupervisor } from '../../src/relay/destination.supervisor.js';
import { UNOWNED_ERROR, type RelayStatus } from '../../src/store/relay.repository.js';
import { createPartner, startService, type TestService } from '../helpers/service.js';

let svc: TestService;
beforeAll(async () => {
  svc = await startService();
  await createPartner(svc, 'oc');
  const r = await svc.api('/v1/partners/oc/endpoints', { json: { url: 'http://127.0.0.1:9/hook', events: ['mirror.updated'], description: 'test' } });
  expect(r.status).toBe(201);
}, 60_000);
afterAll(async () => {
  await svc?.close();
});

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

/**
 * `mirror.updated` end to end: partner events in, the show mirrored onto the YouTube simulator, and
 * each mirror change reported to the partner's endpoint as a signed Standard Webhooks message.
 */
import { mirrorUpdatedKey } from '../../src/outbound/mirror-updated.js';
import { newMirror } from '../../src/domain/mirror.js';
import { sampleShow, sendEvent, showEvent, waitFor, type TestService } from '../helpers/service.js';
import type { TestSim } from '../helpers/sim.js';
import { simTarget, startSimRig, youtubeEncoderNow } from '../helpers/mirrors.js';
import { startEndpoint, type TestEndpoint } from '../helpers/endpoint.js';

interface MirrorUpdated {
  type: string;
  timestamp: string;
  data: { showId: string; targetId: string; platform: string; state: string; externalId: string | null; url: string | null; pins: { productId: string; state: string; linkUrl: string | null; reason?: string }[]; enabled: boolean; lastError: string | null };
}

let svc: TestService;
let sim: TestSim;
let endpoint: TestEndpoint | undefined;
let secret: string;
const received: { id: string; payload: MirrorUpdated }[] = [];

beforeAll(async () => {
  ({ sim, svc, secret } = await startSimRig('tsl', (s) => [simTarget(s, 'youtube', { id: 'yt1', name: 'YT', commissionRateBps: 1000 })], {
    service: { workers: true, env: { OUTBOUND_RETRY_SCHEDULE_MS: '50,50,50' } },
    prepare: youtubeEncoderNow,
  }));
  endpoint = await startEndpoint(svc, 'tsl', ['mirror.updated'], (payload, headers) => received.push({ id: headers['webhook-id']!, payload: payload as MirrorUpdated }));
});

afterAll(async () => {
  endpoint?.close();
  await svc?.close();
  await sim?.close();
});

test('mirror changes reach the partner as signed mirror.updated messages', async () => {
  const show = sampleShow('s1');
  expect((await sendEvent(svc, 'tsl', secret, showEvent('show.scheduled', show, '2026-11-24T17:00:00Z'))).status).toBe(202);
  const ready = await waitFor(async () => received.find((r) => r.payload.data.state === 'ready'));
  expect(ready.payload.type).toBe('mirror.updated');
  expect(Object.keys(ready.payload.data).sort()).toEqual(['enabled', 'externalId', 'lastError', 'pins', 'platform', 'showId', 'state', 'targetId', 'url']);
  expect(ready.payload.data).toMatchObject({ showId: 's1', targetId: 'yt1', platform: 'youtube', enabled: true, lastError: null, pins: [] });
  expect(ready.payload.data.externalId).toBeTruthy();

  await sendEvent(svc, 'tsl', secret, showEvent('show.live', { ...show, state: 'live' }, '2026-11-24T18:00:00Z'));
  await waitFor(async () => received.find((r) => r.payload.data.state === 'live'));
  await sendEvent(svc, 'tsl', secret, { type: 'product.pinned', occurredAt: '2026-11-24T18:05:00Z', data: { showId: 's1', productId: 'p1' } });
  const pinned = await waitFor(async () => received.find((r) => r.payload.data.pins.some((p) => p.productId === 'p1' && p.state === 'pinned')));
  expect(pinned.payload.data.pins[0]!.linkUrl).toMatch(/\/l\//);
  // A product the show's snapshot lacks waits, pending, with the show view's reason.
  await sendEvent(svc, 'tsl', secret, { type: 'product.pinned', occurredAt: '2026-11-24T18:06:00Z', data: { showId: 's1', productId: 'p9' } });
  const waiting = await waitFor(async () => received.find((r) => r.payload.data.pins.some((p) => p.productId === 'p9')));
  const showView = (await (await svc.api('/v1/partners/tsl/shows/s1')).json()) as { mirrors: { pins: { productId: string }[] }[] };
  const viewPin = showView.mirrors[0]!.pins.find((p) => p.productId === 'p9');
  expect(waiting.payload.data.pins.find((p) => p.productId === 'p9')).toEqual(viewPin);
  expect(viewPin).toMatchObject({ state: 'pending', linkUrl: null, reason: expect.stringContaining("product p9 is not in the show's snapshot") });

  // every message is distinct (one per change), and the REST view agrees
  expect(new Set(received.map((r) => r.id)).size).toBe(received.length);
  // The receiver has the request before the worker has recorded the 2xx: wait for the record.
  const view = await waitFor(async () => {
    const body = (await (await svc.api(`/v1/partners/tsl/messages/${pinned.id}`)).json()) as { deliveries: { state: string }[] };
    return body.deliveries[0]?.state === 'delivered' ? body : undefined;
  });
  expect(view).toMatchObject({ id: pinned.id, type: 'mirror.updated', deliveries: [{ state: 'delivered' }] });
});

test('the idempotency key repeats for a re-run of the same change, not for a re-pin', () => {
  const m = newMirror('yt1', 'youtube');
  m.state = 'live';
  m.syncedVersion = 4;
  m.pins = { p1: { state: 'pinned', episode: 1, linkUrl: 'https://x/l/a', ref: undefined, at: undefined } };
  const k1 = mirrorUpdatedKey('tsl', 's1', m);
  expect(mirrorUpdatedKey('tsl', 's1', structuredClone(m))).toBe(k1);
  expect(k1).toMatch(/^mirror:tsl:s1:yt1:[A-Za-z0-9_-]{22}$/);
  const repinned = structuredClone(m);
  repinned.pins.p1!.episode = 2;
  repinned.syncedVersion = 6;
  expect(mirrorUpdatedKey('tsl', 's1', repinned)).not.toBe(k1);
});

/**
 * `mirror.updated` is sent when what the partner can act on changes, not for each retry's wording
 * (review 2026-12-01: a platform failing with varying messages sent 147 messages for one show in ~20
 * minutes). YouTube simulator over real HTTP, real Redis, a real receiving endpoint: every request
 * answering 500, the sync retries with backoff and a fresh "retrying in N s: …" text each time; the
 * partner hears once that the mirror has an error, once that it failed, and, on a show whose platform
 * recovers, once that the error cleared.
 */
import { sampleShow, sendEvent, showEvent, waitFor, type TestService } from '../helpers/service.js';
import type { TestSim } from '../helpers/sim.js';
import { simTarget, startSimRig } from '../helpers/mirrors.js';
import { startEndpoint, type TestEndpoint } from '../helpers/endpoint.js';

interface Msg {
  type: string;
  data: { showId: string; state: string; externalId: string | null; lastError: string | null };
}

let svc: TestService;
let sim: TestSim;
let endpoint: TestEndpoint | undefined;
let secret: string;
const received: Msg[] = [];

beforeAll(async () => {
  ({ sim, svc, secret } = await startSimRig('me', (s) => [simTarget(s, 'youtube', { id: 'me-yt', name: 'YT', commissionRateBps: 100 })], {
    // A 500 leaves its step's outcome unknown: the retry waits out the attempt (2 × PLATFORM_TIMEOUT_MS)
    // and PLATFORM_SETTLE_MS before it looks the step up, 6 s a retry at the tests' default 2 s each; 2.5 s here.
    service: { workers: true, env: { SYNC_MAX_RETRIES: '3', OUTBOUND_RETRY_SCHEDULE_MS: '50,50,50', PLATFORM_TIMEOUT_MS: '1000', PLATFORM_SETTLE_MS: '500' } },
    prepare: (s) => s.control('PUT', '/_sim/youtube/limits', { simulatedEncoder: 1, streamActivationMs: 0 }),
  }));
  endpoint = await startEndpoint(svc, 'me', ['mirror.updated'], (m) => received.push(m as Msg));
}, 60_000);

afterAll(async () => {
  endpoint?.close();
  await svc?.close();
  await sim?.close();
});

test('a platform failing on every attempt: one message when the error appears, one when the mirror fails', async () => {
  await sim.control('PUT', '/_sim/youtube/faults', { rate: 1, kinds: ['500'] });
  try {
    expect((await sendEvent(svc, 'me', secret, showEvent('show.scheduled', sampleShow('me1'), '2026-11-24T17:00:00Z'))).status).toBe(202);
    const failed = await waitFor(async () => received.find((m) => m.data.showId === 'me1' && m.data.state === 'failed'), 60_000, 20);
    expect(failed.data.lastError).toMatch(/gave up after 3 retries/);
    // Three retries, each with its own "retrying in N s" (1 s, then 1–2 s, then 2–4 s): one message.
    const mine = received.filter((m) => m.data.showId === 'me1');
    expect(mine.map((m) => m.data.state)).toEqual(['provisioning', 'failed']);
    expect(mine[0]!.data.lastError).toMatch(/^retrying in \d+ s: youtube: /);
  } finally {
    await sim.control('PUT', '/_sim/youtube/faults', { rate: 0, kinds: [] });
  }
}, 90_000);

test('an error that clears is reported as cleared', async () => {
  await sim.control('PUT', '/_sim/youtube/faults', { rate: 1, kinds: ['500'] });
  try {
    expect((await sendEvent(svc, 'me', secret, showEvent('show.scheduled', sampleShow('me2'), '2026-11-24T17:00:00Z'))).status).toBe(202);
    await waitFor(async () => received.find((m) => m.data.showId === 'me2' && m.data.lastError !== null), 30_000, 20);
  } finally {
    await sim.control('PUT', '/_sim/youtube/faults', { rate: 0, kinds: [] });
  }
  const ready = await waitFor(async () => received.find((m) => m.data.showId === 'me2' && m.data.state === 'ready'), 30_000, 20);
  expect(ready.data.lastError).toBeNull();
  expect(ready.data.externalId).toBeTruthy();
  const mine = received.filter((m) => m.data.showId === 'me2');
  expect(mine.map((m) => [m.data.state, m.data.lastError === null])).toEqual([
    ['provisioning', false],
    ['ready', true],
  ]);
}, 90_000);

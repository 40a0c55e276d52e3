/**
 * The video gate (src/main/runtime.ts `videoGate`) over a stored relay status that does not read (a
 * hand edit with redis-cli): the mirror waits for video as for any relay that does not send, its
 * lastError naming the status's key, logged once; it does not go live. Before, the status's
 * StoredRecordCorruptError failed the sync run (an internal error, retried by BullMQ). Once the
 * relay writes the status afresh (here: `sending`, with the show's relay lease held) the mirror goes
 * live. Real Redis, the Facebook simulator, the sync run by hand (no workers), a relay deployment
 * marked by a heartbeat written by hand (no relay process: nothing writes the status but the test).
 */
import { jest } from '@jest/globals';
import { simTargetCredentials } from '../../src/simulators/sim.accounts.js';
import { createPartner, sampleShow, sendEvent, showEvent, startService, type TestService } from '../helpers/service.js';
import { startSim, type TestSim } from '../helpers/sim.js';

let svc: TestService;
let sim: TestSim;
const P = 'gate-corrupt';
const SHOW = 'gc-1';
const job = { partnerId: P, showId: SHOW, targetId: 'facebook' };

beforeAll(async () => {
  sim = await startSim();
  svc = await startService({ dispatch: false });
  const secret = await createPartner(svc, P);
  const r = await svc.api(`/v1/partners/${P}/targets`, {
    json: { id: 'facebook', platform: 'facebook', name: 'fb', credentials: simTargetCredentials('facebook'), baseUrl: sim.base('facebook'), commissionRateBps: 1000 },
  });
  expect(r.status).toBe(201);
  expect((await sendEvent(svc, P, secret, showEvent('show.live', sampleShow(SHOW, { state: 'live' }), new Date().toISOString()))).status).toBe(202);
}, 60_000);
afterAll(async () => {
  await svc?.close();
  await sim?.close();
});

/** Runs the mirror's sync by hand until it waits (or went live): at most 5 runs. */
async function syncUntilSettled(): Promise<void> {
  for (let i = 0; i < 5; i++) {
    await svc.rt.syncService.sync(job);
    const m = await svc.rt.shows.getMirror(P, SHOW, 'facebook');
    if (m?.state === 'live' || (m?.state === 'ready' && /waiting for video/.test(m.lastError ?? ''))) return;
  }
}

test('a relay status that does not read holds the mirror back (waiting for video, naming the key, one warn line), not an internal error; written afresh as sending, the mirror goes live', async () => {
  await svc.rt.relay.heartbeat(600_000); // a relay deployment whose relay runs
  await syncUntilSettled();
  expect(await svc.rt.shows.getMirror(P, SHOW, 'facebook')).toMatchObject({ state: 'ready', lastError: expect.stringContaining('waiting for video: the relay to this mirror is idle') });

  const key = svc.rt.keys.relayStatus(P, SHOW, 'facebook');
  await svc.rt.redis.set(key, '{"state":"sending","bitr');
  const warn = jest.spyOn(svc.rt.log, 'warn');
  try {
    for (let i = 0; i < 2; i++) expect(await svc.rt.syncService.sync(job)).toMatchObject({ kind: 'delay' });
    const lines = warn.mock.calls.filter((c) => c[1] === 'relay status does not read: the mirror waits for video');
    expect(lines).toHaveLength(1);
    expect(lines[0]![0]).toMatchObject({ key, reason: 'not JSON', showId: SHOW, targetId: 'facebook' });
  } finally {
    warn.mockRestore();
  }
  const waiting = await svc.rt.shows.getMirror(P, SHOW, 'facebook');
  expect(waiting?.state).toBe('ready');
  expect(waiting?.lastError).toMatch(/waiting for video: the stored relayStatus record/);
  expect(waiting?.lastError).toContain(key);
  expect(waiting?.lastError).not.toMatch(/internal error/);
  expect((await sim.effects('facebook')).filter((e) => e.type === 'show.started')).toEqual([]);

  // The relay's next write (it holds the show and sends): the mirror goes live.
  await svc.rt.redis.set(svc.rt.keys.relayLease(P, SHOW), 'test-relay', 'PX', 600_000);
  await svc.rt.relay.setStatus(P, SHOW, 'facebook', { state: 'sending', bitrateKbps: 2500, bytesSent: 1000, since: new Date().toISOString(), restarts: 0, lastError: null });
  await syncUntilSettled();
  expect((await svc.rt.shows.getMirror(P, SHOW, 'facebook'))?.state).toBe('live');
  expect((await sim.effects('facebook')).filter((e) => e.type === 'show.started')).toHaveLength(1);
}, 60_000);

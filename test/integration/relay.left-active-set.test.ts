/**
 * A show that left the active set between two relay passes (ended, and swept out by the next sweep
 * before a relay pass saw it ended) is released like one the pass sees ended: its destinations stopped
 * (`stopped` in the mirror view) and its lease dropped. Kept, the relay would hold the show's lease
 * and its readers for good: no later pass reads a show outside the active set. The real RelayService
 * (its passes run by hand), real Redis.
 */
import type { RelayService } from '../../src/relay/relay.service.js';
import { createPartner, sampleShow, sendEvent, showEvent, startService, type TestService } from '../helpers/service.js';
import { addOfflineWhatnotTarget, handRunRelay, linkOperatorMirror } from '../helpers/hand-relay.js';
import { viewOf } from '../helpers/relay.js';

let svc: TestService;
let relay: RelayService | undefined;
beforeAll(async () => {
  svc = await startService({});
});
afterAll(async () => {
  await relay?.close();
  await svc.close();
});

const P = 'la';

test('a show swept out of the active set between two passes is stopped and its lease dropped', async () => {
  const secret = await createPartner(svc, P);
  await addOfflineWhatnotTarget(svc, P, 'la-a');
  expect((await sendEvent(svc, P, secret, showEvent('show.live', sampleShow('la-1', { state: 'live' }), new Date().toISOString()))).status).toBe(202);
  await linkOperatorMirror(svc, P, 'la-1', 'la-a', 'la-op-key-secret');
  relay = handRunRelay(svc); // no publish: the destination waits idle, no ffmpeg needed
  await relay.tick();
  expect(await svc.rt.relay.leaseHolder(P, 'la-1')).toBe(relay.leaseToken);
  expect((await viewOf(svc, P, 'la-1')).mirrors[0]!.relay.state).toBe('idle');

  // The show ends and the sweep takes it out of the active set before the relay's next pass.
  expect((await sendEvent(svc, P, secret, showEvent('show.ended', sampleShow('la-1', { state: 'ended' }), new Date(Date.now() + 1000).toISOString()))).status).toBe(202);
  expect(await svc.rt.shows.markInactive(P, 'la-1')).toBe(true);
  await relay.tick();

  expect(await svc.rt.relay.leaseHolder(P, 'la-1')).toBeNull();
  expect((await viewOf(svc, P, 'la-1')).mirrors[0]!.relay.state).toBe('stopped');
});

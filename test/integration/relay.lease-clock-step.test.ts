/**
 * A relay process that cannot renew its show's lease (Redis unreachable from it) keeps pushing only
 * while the lease surely has not lapsed for the others (0.6 × RELAY_LEASE_MS after its last renewal).
 * That was measured on the wall clock: an NTP step back of an hour kept it pushing for an hour, while
 * another relay took the lapsed lease and pushed the same show too. Now on the monotonic clock.
 * The real RelayService (its pass and renewal run by hand), real Redis; the renewals fail as with Redis
 * gone for this process only.
 */
import { jest } from '@jest/globals';
import type { RelayRepository } from '../../src/store/relay.repository.js';
import { handRunRelay } from '../helpers/hand-relay.js';
import { createPartner, sampleShow, sendEvent, serviceForFile, showEvent, type TestService } from '../helpers/service.js';

let svc: TestService;
serviceForFile((started) => (svc = started));

test('a wall clock stepped back does not keep a relay that cannot renew its lease pushing', async () => {
  const secret = await createPartner(svc, 'step');
  expect((await sendEvent(svc, 'step', secret, showEvent('show.live', sampleShow('step1', { state: 'live' }), new Date().toISOString()))).status).toBe(202);
  let unreachable = false;
  const real = svc.rt.relay;
  // The service's relay store, with its lease renewals failing as with Redis gone for this process.
  const relayRepo: RelayRepository = Object.assign(Object.create(real) as RelayRepository, {
    takeLease: (...args: Parameters<RelayRepository['takeLease']>) => (unreachable ? Promise.reject(new Error('Connection is closed.')) : real.takeLease(...args)),
  });
  const relay = handRunRelay(svc, { relay: relayRepo, leaseMs: 1_000 });
  const owned = (): number => (relay as unknown as { owned: Map<string, unknown> }).owned.size;
  const renewAll = (): Promise<void> => (relay as unknown as { renewAll(): Promise<void> }).renewAll();
  try {
    await relay.tick();
    expect(owned()).toBe(1);
    unreachable = true;
    await renewAll(); // right after the pass took the lease: kept (the grace counts from the take)
    expect(owned()).toBe(1);
    unreachable = false;
    await new Promise((r) => setTimeout(r, 700));
    await renewAll(); // renewed, 0.7 × the lease after the take
    unreachable = true;
    await renewAll(); // right after that renewal: kept (the grace counts from the last renewal, not the take)
    expect(owned()).toBe(1);
    // The wall clock steps back an hour; 0.7 × the lease passes without a renewal.
    const realNow = Date.now;
    const spy = jest.spyOn(Date, 'now').mockImplementation(() => realNow() - 3_600_000);
    try {
      await new Promise((r) => setTimeout(r, 700));
      await renewAll();
    } finally {
      spy.mockRestore();
    }
    expect(owned()).toBe(0);
  } finally {
    await relay.close();
  }
}, 30_000);

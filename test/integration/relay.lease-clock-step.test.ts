/**
 * A relay process that cannot renew its show's lease (Redis unreachable from it) keeps pushing only
 * while the lease surely has not lapsed for the others (leaseGraceMs: at least 0.6 × RELAY_LEASE_MS after its last renewal).
 * That was measured on the wall clock: an NTP step back of an hour kept it pushing for an hour, while
 * another relay took the lapsed lease and pushed the same show too. Now on the monotonic clock.
 * The real RelayService (its pass and renewal run by hand), real Redis; the renewals fail as with Redis
 * gone for this process only.
 * Also here (the same hand-run relay, no ffmpeg): a wake during a pass makes one pass after it.
 */
import { jest } from '@jest/globals';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RIDE_OUTAGE_MAX_LEASES, leaseGraceMs, type RelayServiceDeps } from '../../src/relay/relay.service.js';
import type { RelayRepository } from '../../src/store/relay.repository.js';
import { redisRefusesConnections } from '../../src/store/redis.js';
import { testPort } from '../helpers/ports.js';
import { addOfflineWhatnotTarget, handRunRelay, linkOperatorMirror } from '../helpers/hand-relay.js';
import { createPartner, sampleShow, sendEvent, serviceForFile, showEvent, waitFor, type TestService } from '../helpers/service.js';

let svc: TestService;
serviceForFile((started) => (svc = started));

/**
 * A live show of partner `partnerId` and a hand-run relay of it with lease `leaseMs`, whose lease
 * renewals fail while `unreachable(true)` (as with Redis gone for this process only).
 */
async function relayWithFailingRenewals(partnerId: string, leaseMs: number, deps: Partial<RelayServiceDeps> = {}) {
  const secret = await createPartner(svc, partnerId);
  expect((await sendEvent(svc, partnerId, secret, showEvent('show.live', sampleShow(`${partnerId}1`, { state: 'live' }), new Date().toISOString()))).status).toBe(202);
  /** true: fail at once; 'unanswered': never answered; a number: sent to Redis that many ms late (a slow Redis). */
  let failing: boolean | 'unanswered' | number = false;
  /** The calls sent late (`failing` a number) that have not reached Redis yet. */
  const late = new Set<Promise<unknown>>();
  /** How many calls were sent late so far (answered or not). */
  let sentLate = 0;
  const real = svc.rt.relay;
  // The service's relay store, with its lease takes and renewals failing as with Redis gone for this process (the
  // API's client fails them at once; the relay role's queues them: they stay unanswered).
  const failed = <A extends unknown[]>(call: (...args: A) => Promise<boolean>) =>
    (...args: A): Promise<boolean> =>
      typeof failing === 'number'
        ? (() => {
            const sent = new Promise((r) => setTimeout(r, failing as number)).then(() => call(...args));
            late.add(sent);
            sentLate++;
            void sent.finally(() => late.delete(sent)).catch(() => undefined);
            return sent;
          })()
        : failing === 'unanswered'
          ? new Promise<boolean>(() => undefined)
          : failing
            ? Promise.reject(new Error('Connection is closed.'))
            : call(...args);
  const relayRepo: RelayRepository = Object.assign(Object.create(real) as RelayRepository, {
    takeLease: failed((...args: Parameters<RelayRepository['takeLease']>) => real.takeLease(...args)),
    renewLease: failed((...args: Parameters<RelayRepository['renewLease']>) => real.renewLease(...args)),
  });
  const relay = handRunRelay(svc, { relay: relayRepo, leaseMs, ...deps });
  return {
    relay,
    unreachable: (on: boolean | 'unanswered' | number): void => {
      failing = on;
    },
    owned: (): number => (relay as unknown as { owned: Map<string, unknown> }).owned.size,
    /** Resolves once every call sent late has reached Redis and been answered (at least one was sent: else the check after it proves nothing). */
    lateAnswered: async (): Promise<void> => {
      expect(sentLate).toBeGreaterThan(0);
      await Promise.allSettled([...late]);
    },
    renewAll: (): Promise<void> => (relay as unknown as { renewAll(): Promise<void> }).renewAll(),
  };
}

test('a wall clock stepped back does not keep a relay that cannot renew its lease pushing', async () => {
  const { relay, unreachable: setUnreachable, owned, renewAll } = await relayWithFailingRenewals('step', 1_000);
  try {
    await relay.tick();
    expect(owned()).toBe(1);
    setUnreachable(true);
    await renewAll(); // right after the pass took the lease: kept (the grace counts from the take)
    expect(owned()).toBe(1);
    setUnreachable(false);
    await new Promise((r) => setTimeout(r, 700));
    await renewAll(); // renewed, 0.7 × the lease after the take
    setUnreachable(true);
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

test('a relay that cannot renew keeps its show for 0.6 × the lease after the take, not for a moment', async () => {
  // A 10 s lease: the grace is 8.25 s (leaseGraceMs), and the renewal that fails comes 300 ms after the take (a grace
  // of a few ms, as a typo in the factor would make it, stopped the show at the first Redis hiccup).
  const { relay, unreachable, owned, renewAll } = await relayWithFailingRenewals('grace', 10_000);
  try {
    await relay.tick();
    // This show (and the one before it, when its lapsed lease is no longer left to its holder: Redis up for 10 s).
    const taken = owned();
    expect(taken).toBeGreaterThan(0);
    unreachable(true);
    await new Promise((r) => setTimeout(r, 300));
    await renewAll();
    expect(owned()).toBe(taken);
  } finally {
    await relay.close();
  }
}, 30_000);

test("a wake that comes during a pass makes one more pass as soon as it ends (not at the next poll, not for ever); a wake for another process's show makes none", async () => {
  // Its edge accepted a publish while a pass ran: without the pass after it, the show's readers
  // started only at the next RELAY_POLL_MS.
  const relay = handRunRelay(svc); // passes every 60 s
  let passes = 0;
  const tick = relay.tick.bind(relay);
  relay.tick = async () => {
    passes += 1;
    return tick();
  };
  relay.start(); // its first pass runs now
  relay.wake();
  try {
    await waitFor(async () => passes >= 2, 5_000);
    relay.wake({ partnerId: 'nobody', showId: 'not-ours' });
    await new Promise((r) => setTimeout(r, 300));
    expect(passes).toBe(2);
  } finally {
    await relay.close();
  }
}, 30_000);

/** Resolves with `p`, or with 'still waiting' after `ms` (a renewal round that never ends fails the test, not its timeout). */
const within = <T>(p: Promise<T>, ms: number): Promise<T | 'still waiting'> => Promise.race([p, new Promise<'still waiting'>((r) => setTimeout(() => r('still waiting'), ms))]);

test('a renewal Redis never answers (the relay role queues commands through an outage) counts as failed: past the grace the show stops', async () => {
  // It waited for the answer: a relay process cut off from Redis (a frozen Redis, a partition) pushed on
  // for as long as that lasted, while another relay took the lapsed lease and pushed too.
  const { relay, unreachable, owned, renewAll } = await relayWithFailingRenewals('unanswered', 1_000);
  try {
    await relay.tick();
    unreachable('unanswered');
    await new Promise((r) => setTimeout(r, 700));
    expect(await within(renewAll(), 5_000)).toBeUndefined();
    expect(owned()).toBe(0);
  } finally {
    await relay.close();
  }
}, 30_000);

test('past the grace, a relay keeps its shows while Redis refuses connections (nobody can take the lease), not while it does not answer', async () => {
  // A closed port on this host: connections are refused, as from a Redis that is down; then this
  // file's Redis, which accepts them (another process may be renewing there).
  for (const [partnerId, address, kept] of [
    ['refused', `redis://127.0.0.1:${await testPort()}`, true],
    ['listening', svc.redis.url, false],
  ] as const) {
    const { relay, unreachable, owned, renewAll } = await relayWithFailingRenewals(partnerId, 1_000, { redisRefuses: () => redisRefusesConnections(address) });
    try {
      await relay.tick();
      const taken = owned();
      expect(taken).toBeGreaterThan(0);
      unreachable(true);
      await new Promise((r) => setTimeout(r, 700));
      await renewAll();
      expect([partnerId, owned()]).toEqual([partnerId, kept ? taken : 0]);
    } finally {
      await relay.close();
    }
  }
}, 30_000);

test('a show rides a refused Redis for at most RIDE_OUTAGE_MAX_LEASES leases after its last renewal', async () => {
  // Redis back at another address (npm start's own redis-server on a new port) leaves the old one
  // refusing for good: the show was kept for ever while another process took the lease at the new one.
  const leaseMs = 300;
  const refusedAt = `redis://127.0.0.1:${await testPort()}`;
  const { relay, unreachable, owned, renewAll } = await relayWithFailingRenewals('capped', leaseMs, { redisRefuses: () => redisRefusesConnections(refusedAt) });
  try {
    await relay.tick();
    unreachable(true);
    const t0 = performance.now();
    const capMs = leaseMs * RIDE_OUTAGE_MAX_LEASES;
    let keptUntil = 0;
    while (performance.now() - t0 < capMs + 1_000 && owned() > 0) {
      await renewAll();
      if (owned() > 0) keptUntil = performance.now() - t0;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(keptUntil).toBeGreaterThan(leaseMs); // rode the outage past its grace
    expect(owned()).toBe(0); // and stopped at the cap
  } finally {
    await relay.close();
  }
}, 30_000);

/** The show's state inside `relay` (its last counted renewal's send time), by partner. */
const ownedShow = (relay: unknown, partnerId: string): { lastRenewOk: number } | undefined =>
  [...(relay as { owned: Map<string, { partnerId: string; lastRenewOk: number }> }).owned.values()].find((o) => o.partnerId === partnerId);

test('a renewal Redis answers after the renewal interval still counts: a slow Redis keeps the show', async () => {
  // A 4 s lease: renewal rounds every second, each giving up after 1 s; Redis answers every renewal after
  // 1.1 s (a fork or fsync stall). Every answer came too late and was thrown away, and the show stopped
  // 2.4 s in, though each renewed it. Counted but sent only every other round (the one after a late
  // answer finds it pending), the grace ran out all the same (2 rounds + 1 s after the last one counted).
  const leaseMs = 4_000;
  const { relay, unreachable } = await relayWithFailingRenewals('slow', leaseMs);
  try {
    await relay.tick();
    const o = ownedShow(relay, 'slow'); // (the shows of the tests before it count for nothing here)
    expect(o).toBeDefined();
    unreachable(1_100);
    relay.start(); // its renewal rounds, every quarter lease, as in a relay process (its next pass in 60 s)
    // A lease's length (was 5 s): the old code stopped the show at its grace's end, 2.4 s in.
    await new Promise((r) => setTimeout(r, leaseMs));
    expect(ownedShow(relay, 'slow')).toBe(o);
  } finally {
    await relay.close();
  }
}, 30_000);

test('a Redis that answers every renewal in 0.35 × the lease keeps the show; one that stops answering stops it before its lease can lapse', async () => {
  // The default 6 s lease, every renewal answered 2.1 s after it was sent (a fork or fsync stall): each
  // extended the lease on Redis, but one renewal at a time, the next sent only once the one before was
  // answered, left the latest counted renewal two answers old, and the show stopped.
  const leaseMs = 6_000;
  const { relay, unreachable } = await relayWithFailingRenewals('slower', leaseMs);
  try {
    await relay.tick();
    const o = ownedShow(relay, 'slower');
    expect(o).toBeDefined();
    unreachable(2_100);
    relay.start(); // its renewal rounds, every quarter lease, as in a relay process (its next pass in 60 s)
    // A lease's length (was 8 s): one renewal at a time stopped the show at its grace's end, 4.25 s in.
    await new Promise((r) => setTimeout(r, leaseMs));
    expect(ownedShow(relay, 'slower')).toBe(o);
    // Redis stops answering: the show stops while its lease on Redis surely still runs (it runs from a
    // renewal's execution, after its send), at most a renewal interval past the grace.
    unreachable('unanswered');
    const t0 = performance.now();
    await waitFor(async () => ownedShow(relay, 'slower') === undefined, 2 * leaseMs, 20);
    const stoppedAt = performance.now();
    expect(o!.lastRenewOk).toBeLessThanOrEqual(t0);
    expect(stoppedAt - o!.lastRenewOk).toBeLessThan(leaseMs);
  } finally {
    await relay.close();
  }
}, 30_000);

test('a renewal that reaches Redis after close() handed the lease back takes nothing: another process takes the show at once', async () => {
  // It held the show for a whole lease (the renewal took the lease again), and another relay process
  // waited that long to take the show over. Here the renewal goes out just before close() and reaches
  // Redis 500 ms later, after the hand-back.
  const leaseMs = 60_000;
  const { relay, unreachable, renewAll, lateAnswered } = await relayWithFailingRenewals('handback', leaseMs);
  const leases = svc.rt.relay;
  let renewed: Promise<void> | undefined;
  try {
    await relay.tick();
    expect(await leases.leaseHolder('handback', 'handback1')).toBe(relay.leaseToken);
    unreachable(500);
    renewed = renewAll();
  } finally {
    await relay.close();
  }
  expect(await leases.leaseHolder('handback', 'handback1')).toBeNull();
  await renewed;
  // close() ends the round's wait at once (renewed resolves then), not the renewal: it reaches Redis
  // 500 ms after it was sent. Checked once it did (it was checked 100 ms after close(), before it got
  // there, so a renewal that took the lease back passed).
  await lateAnswered();
  expect(await leases.leaseHolder('handback', 'handback1')).toBeNull();
  expect(await leases.takeLease('handback', 'handback1', 'another-host:1:abc', leaseMs)).toBe(true);
}, 30_000);

test("the grace after a lease take counts from the take's send, not its answer", async () => {
  // A 1 s lease (grace 0.6 s), the take answered 450 ms after it was sent: the lease runs from when
  // Redis ran the take, so 300 ms after the answer (750 ms after the send) with the renewals failing
  // the show is past its grace. Counted from the answer it was kept until 1.05 s after the send.
  const { relay, unreachable, renewAll } = await relayWithFailingRenewals('takesent', 1_000);
  try {
    unreachable(450);
    await relay.tick();
    const taken = ownedShow(relay, 'takesent') !== undefined;
    unreachable(true);
    await new Promise((r) => setTimeout(r, 300));
    await renewAll();
    expect({ taken, after: ownedShow(relay, 'takesent') !== undefined }).toEqual({ taken: true, after: false });
  } finally {
    await relay.close();
  }
}, 30_000);

test('a show whose grace runs out before its next judgement is judged when it runs out, not a renewal interval later', async () => {
  // A 4 s lease: grace 2.4 s, rounds every second. Renewals unanswered from the take on: the round at 1 s
  // is judged at 2 s (still in grace, 0.4 s left); the next judgement would come at 3 s, past the
  // grace (and, with the probe and the readers' stop, past the lease at the default 6 s). Judged at 2.4 s.
  const { relay, unreachable, renewAll } = await relayWithFailingRenewals('gracerun', 4_000);
  try {
    await relay.tick();
    const taken = ownedShow(relay, 'gracerun') !== undefined;
    unreachable('unanswered');
    await renewAll(); // sends a renewal, judged 1 s later: in grace
    await renewAll(); // sends another, judged 1 s later (2 s in): in grace for 0.4 s more, judged again then
    expect({ taken, kept: ownedShow(relay, 'gracerun') !== undefined }).toEqual({ taken: true, kept: false });
  } finally {
    await relay.close();
  }
}, 30_000);

test("close() ends a show's wait for its grace to run out: nothing of it acts after close(), nor keeps the process up", async () => {
  // A 4 s lease: grace 2.4 s, rounds every second. Renewals failing 1.6 s after the last one counted (set
  // back here rather than waited for): the round waits the 0.8 s left of the grace, then probes Redis's
  // address and judges the show. Its timer outlived close() (up to a renewal interval, more at longer
  // leases), then the probe ran and the show, handed back by close(), was judged again.
  let probes = 0;
  const { relay, unreachable, renewAll } = await relayWithFailingRenewals('graceclose', 4_000, {
    redisRefuses: async () => {
      probes += 1;
      return false;
    },
  });
  let round: Promise<number> | undefined;
  let closing = 0;
  try {
    await relay.tick();
    const o = ownedShow(relay, 'graceclose');
    expect(o).toBeDefined();
    o!.lastRenewOk -= 1_600;
    unreachable(true);
    round = renewAll().then(() => performance.now());
    await new Promise((r) => setImmediate(r)); // the failed renewal's judgement: waiting for the grace's end
  } finally {
    closing = performance.now();
    await relay.close();
  }
  // Ended as close() began (within 0.4 s even on a loaded machine), not 0.8 s later.
  expect({ roundEndedAtClose: (await round!) - closing < 400, probes }).toEqual({ roundEndedAtClose: true, probes: 0 });
}, 30_000);

test("a show whose grace runs out while close() waits for a pass stuck on Redis has its readers stopped then, before its lease can lapse, with no probe", async () => {
  // The default 6 s lease (grace 4.25 s), a network partition: renewals and the pass's commands go
  // unanswered (the relay role's client queues them). close() (SIGTERM) comes 0.2 s before the show's
  // grace runs out (its last counted renewal set back rather than waited for), with a renewal round
  // waiting and the pass waiting on its heartbeat. close() ended the round (nothing judged) and waited
  // for the pass: the reader ran on until the process's Redis-gone check stopped it (≈ 2 s into the
  // shutdown: past the lease), or, with none (a failed start's stop), until the pass ended.
  const leaseMs = 6_000;
  const dir = mkdtempSync(join(tmpdir(), 'gracestop-'));
  const fake = join(dir, 'fake-ffmpeg.sh'); // a reader that waits (an armed one: no publish yet)
  writeFileSync(fake, '#!/bin/sh\nexec sleep 600\n');
  chmodSync(fake, 0o755);
  let probes = 0;
  const { relay, unreachable, renewAll } = await relayWithFailingRenewals('gracestop', leaseMs, {
    ffmpeg: fake,
    edgeUrl: () => 'rtmp://127.0.0.1:9/live',
    startTimeoutMs: 60_000,
    redisRefuses: async () => {
      probes += 1;
      return false;
    },
  });
  await addOfflineWhatnotTarget(svc, 'gracestop', 'gracestop-a');
  await linkOperatorMirror(svc, 'gracestop', 'gracestop1', 'gracestop-a', 'op-key', svc.rt.box, 'rtmp://127.0.0.1:9/app');
  const repo = (relay as unknown as { deps: { relay: RelayRepository } }).deps.relay;
  let answerHeartbeat = (): void => undefined;
  const heartbeatAnswered = new Promise<void>((r) => (answerHeartbeat = r));
  let closing: Promise<void> | undefined;
  try {
    await relay.tick();
    await waitFor(async () => relay.pids().length === 1, 10_000, 20);
    const o = ownedShow(relay, 'gracestop')!;
    repo.heartbeat = (ttlMs) => heartbeatAnswered.then(() => svc.rt.relay.heartbeat(ttlMs));
    unreachable('unanswered');
    o.lastRenewOk = performance.now() - (leaseGraceMs(leaseMs) - 200);
    const leaseEnd = o.lastRenewOk + leaseMs;
    relay.start(); // its pass, waiting on the heartbeat
    const round = renewAll(); // a renewal sent, waiting for its answer
    await new Promise((r) => setImmediate(r));
    closing = relay.close();
    await round;
    await waitFor(async () => relay.pids().length === 0, 3_000, 20);
    expect({ stoppedBeforeLeaseEnd: performance.now() < leaseEnd, probes }).toEqual({ stoppedBeforeLeaseEnd: true, probes: 0 });
  } finally {
    unreachable(false);
    answerHeartbeat();
    await (closing ?? relay.close());
    rmSync(dir, { recursive: true, force: true });
  }
}, 30_000);

// Restarts the file's Redis: last.
test('a lease that lapsed while Redis was down is left to its holder for one lease after Redis is back; a show nobody held is taken at once', async () => {
  const leases = svc.rt.relay;
  const ttl = 3_000;
  expect(await leases.takeLease('lapsed', 's1', 'holder', ttl)).toBe(true);
  await svc.redis.stop('SIGKILL');
  await new Promise((r) => setTimeout(r, ttl + 500)); // the lease lapses while Redis is down
  await svc.redis.start();
  // Another process reaching Redis first does not take it: its holder may be pushing it still.
  expect(await waitFor(async () => ((await leases.takeLease('lapsed', 's1', 'another', ttl)) ? 'taken' : 'refused'), 10_000, 100)).toBe('refused');
  expect(await leases.takeLease('lapsed', 'fresh', 'another', ttl)).toBe(true);
  expect(await leases.takeLease('lapsed', 's1', 'holder', ttl)).toBe(true);
  expect(await leases.leaseHolder('lapsed', 's1')).toBe('holder');
}, 30_000);

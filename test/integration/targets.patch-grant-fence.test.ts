/**
 * A target PATCH of credentials that stalls a whole lease between its last renewal of the grant lock
 * and its writes (or between its two writes), while a second PATCH takes the lock and saves another
 * app's grant. The writes (the target record in the partner's slot, the token record in the target's)
 * were not fenced by the lock: the stalled PATCH's writes landed after the second's, and left one
 * PATCH's credentials beside the other's token record (a refresh token Whatnot refuses with those
 * credentials: the target's authorisation lost). Now each write is a script that checks in the same
 * step that its slot's hold still names the PATCH's nonce (RedisTokenStore.lockGrant): the stalled
 * PATCH answers 409 and nothing of it is left; one whose lease ran out but whose holds nobody took
 * writes as before (200).
 *
 * The stall is made deterministic: the first PATCH (A) is held at one point by wrapping the
 * verifier's lock or token write (the service's own objects, not Redis), and its lease is made to run
 * out there by ending it (its lock's release(): the renewals stop, as in a frozen process, and the
 * lease is over; the old lock's release deleted the key, which is what its lapse did). The second
 * PATCH (B) then runs to completion, and A goes on. Real service, one Redis and a Redis Cluster, the
 * Whatnot simulator (rotating refresh tokens) over HTTP.
 */
import { ConcurrentUpdateError } from '../../src/store/partner.repository.js';
import { RedisTokenStore, workerTokenStore, type GrantLock } from '../../src/store/token.repository.js';
import type { AccessToken } from '../../src/targets/target.adapter.js';
import { startTestRedis } from '../helpers/redis-cluster.js';
import type { TestRedis } from '../helpers/redis-server.js';
import { createPartner } from '../helpers/service.js';
import { refreshStatus, refreshToken, startWhatnotGrantRig, tokenRecord, whatnotApp, whsec, type WhatnotGrantRig } from '../helpers/whatnot-grant.js';

type StallAt = 'after its last renewal' | 'before its token write' | 'after its token write';

describe.each(['single', 'cluster'] as const)('%s Redis', (topology) => {
  let redis: TestRedis | undefined;
  let rig: WhatnotGrantRig | undefined;
  beforeAll(async () => {
    redis = await startTestRedis(topology);
    rig = await startWhatnotGrantRig(20_000, redis);
    await createPartner(rig.svc, 'pr');
  }, 120_000);
  afterAll(async () => {
    await rig?.close();
    await redis?.destroy();
  });

  let n = 0;
  /** A new Whatnot target of the partner, with its original app's credentials. */
  const createTarget = async (): Promise<{ id: string; original: Record<string, string> }> => {
    const id = `wg${++n}`;
    const original = whatnotApp('x');
    const created = await rig!.svc.api('/v1/partners/pr/targets', { json: { id, platform: 'whatnot', name: 'Whatnot app', credentials: original, baseUrl: rig!.proxy.url, commissionRateBps: 800 } });
    expect(created.status).toBe(201);
    return { id, original };
  };
  /**
   * A's PATCH (`sameGrant`: the app's credentials again with a new webhookSecret, its check refreshing
   * from the token record; else another app's grant) stalled `at`, its lease run out there; B's PATCH
   * run meanwhile: `grant`, a third app's grant, checked; `nothing`, a baseUrl whose host does not
   * exist (it takes the lock and answers without writing); `none`, no B. Answers A's and B's statuses
   * and what is left: the target's credentials and token record (and the original credentials).
   */
  async function interleave(at: StallAt, sameGrant: boolean, second: 'grant' | 'same' | 'nothing' | 'none' = 'grant', during?: (id: string, before: AccessToken | null, original: Record<string, string>) => Promise<void>) {
    const { svc, sim } = rig!;
    const { id, original } = await createTarget();
    if (sameGrant) await sim.control('POST', '/_sim/whatnot/tokens/expire', {});
    // The record before A: what a worker's refresh under way during A's PATCH started from.
    const before = await tokenRecord(svc, id);

    const verifier = svc.rt.credentialVerifier;
    const saved = { lockGrant: verifier.lockGrant, keep: verifier.keep, keepHeld: verifier.keepHeld };
    let lockA: GrantLock | undefined;
    let arrive!: () => void;
    const arrived = new Promise<void>((resolve) => (arrive = resolve));
    let go!: () => void;
    const gone = new Promise<void>((resolve) => (go = resolve));
    let stalled = false;
    // Once, in A: its lease runs out here (renewals stopped, lease ended), and it waits for B.
    const stall = async (): Promise<void> => {
      if (stalled) return;
      stalled = true;
      await lockA!.release();
      arrive();
      await gone;
    };
    verifier.lockGrant = async (...args) => {
      const lock = await saved.lockGrant.apply(verifier, args);
      if (!lock || lockA) return lock;
      lockA = lock;
      // The route's own renew() is the last one, right before its writes (the timer renews through the lock itself).
      return {
        ...lock,
        renew: async () => {
          const held = await lock.renew();
          if (at === 'after its last renewal') await stall();
          return held;
        },
      };
    };
    // What a worker reading the token record right after A's token write (written or refused) finds.
    let afterWrite: AccessToken | null | undefined;
    const tokenWrite =
      <A extends unknown[], R>(write: (...args: A) => Promise<R>) =>
      async (...args: A): Promise<R> => {
        if (at === 'before its token write') await stall();
        try {
          const written = await write.apply(verifier, args);
          if (at === 'after its token write') await stall();
          return written;
        } finally {
          afterWrite = await tokenRecord(svc, id);
        }
      };
    verifier.keep = tokenWrite(saved.keep);
    verifier.keepHeld = tokenWrite(saved.keepHeld);
    try {
      const a = sameGrant ? { ...original, webhookSecret: whsec() } : whatnotApp('a');
      const patchA = svc.api(`/v1/partners/pr/targets/${id}`, { method: 'PATCH', json: { credentials: a } });
      await arrived;
      // `same`: the original app's grant again (a new webhookSecret), as the target still has it.
      const b = second === 'same' ? { ...original, webhookSecret: whsec() } : whatnotApp('b');
      const bodyB = second === 'grant' || second === 'same' ? { credentials: b } : { baseUrl: 'http://no-such-host.invalid' };
      const statusB = second === 'none' ? undefined : (await svc.api(`/v1/partners/pr/targets/${id}`, { method: 'PATCH', json: bodyB })).status;
      await during?.(id, before, original);
      go();
      const statusA = (await patchA).status;
      const credentials = svc.rt.partners.openCredentials((await svc.rt.partners.getTarget('pr', id))!);
      const token = await tokenRecord(svc, id);
      return { original, a, b, statusA, statusB, credentials, token, afterWrite };
    } finally {
      go();
      Object.assign(verifier, saved);
    }
  }

  /** Whatnot refreshes the record's refresh token with the target's app: the two are one grant's (a mix: invalid_grant). */
  const oneGrant = async (credentials: Record<string, string>, token: AccessToken | null): Promise<void> => {
    expect(token?.refreshToken).toMatch(/^wn_sim_refresh_/);
    expect(await refreshStatus(rig!.sim.base('whatnot'), credentials, token!)).toBe(200);
  };

  /** A stalled after its token write (`during` its stall: what else happens) while B took the lock and wrote nothing: 409 for A, the original credentials and their grant's record left. */
  const refusedLeavesOriginal = async (during?: Parameters<typeof interleave>[3]): Promise<void> => {
    const { original, statusA, statusB, credentials, token } = await interleave('after its token write', false, 'nothing', during);
    expect([400, 503]).toContain(statusB);
    expect(statusA).toBe(409);
    expect(credentials).toEqual(original);
    await oneGrant(credentials, token);
  };

  test.each([
    ['after its last renewal', true],
    ['after its last renewal', false],
    ['before its token write', false],
    ['after its token write', false],
  ] as const)('A stalled %s (same grant: %s) while B saved another grant: 409 for A, B credentials and token record left', async (at, sameGrant) => {
    const { b, statusA, statusB, credentials, token, afterWrite } = await interleave(at, sameGrant);
    expect(statusB).toBe(200);
    // Right after A's token write (refused, or written before B's): B's record, the one left. Without
    // the token write's own fence (FENCED_REPLACE_LUA's hold check) A's stalled write lands over B's,
    // and until A's undo puts B's back a worker finds B's credentials beside A's token (invalid_grant,
    // which drops the grant); the final state alone does not show it.
    expect(afterWrite?.refreshToken).toBe(token?.refreshToken);
    await oneGrant(credentials, token);
    expect(statusA).toBe(409);
    expect(credentials).toEqual(b);
  }, 60_000);

  // A renewal of the grant lock sent before its release and reaching Redis after it (answered late, a
  // command resent after a reconnect) extended the hold again: the next PATCH waited for a lease
  // nobody held (up to a lease, then 409). The release marks the lease ended; a renewal then extends nothing.
  test('a renewal that reaches Redis after the release does not hold the grant lock again', async () => {
    const { svc } = rig!;
    const id = `wg${++n}`;
    const first = await new RedisTokenStore(svc.rt.redis, svc.rt.keys, svc.rt.box, id).lockGrant(30_000, 'pr');
    expect(first).not.toBeNull();
    await first!.release();
    const { nonce, tokenHold, targetHold } = first!.fence;
    const late = await Promise.all([tokenHold, targetHold].map((key) => svc.rt.redis.scTokenHoldRenew(key, nonce, '30000', '30000')));
    expect(late).toEqual([0, 0]);
    expect(await first!.renew()).toBe(false);
    // The next PATCH takes it at once (it waits at most its own lease, 300 ms here).
    const next = await new RedisTokenStore(svc.rt.redis, svc.rt.keys, svc.rt.box, id).lockGrant(300, 'pr');
    expect(next).not.toBeNull();
    await next!.release();
  }, 60_000);

  // While A is stalled with its new grant's record written, a worker with the old credentials (A's
  // target write has not happened) refreshes the old grant, which Whatnot rotates: the rotated refresh
  // token went nowhere (refreshed() saw A's grant in the record), and A's undo put back the old record
  // with the refresh token rotated away. Now it goes into the record's base, which the undo puts back.
  test("A's new grant refused after a worker rotated the old grant meanwhile: the old credentials keep the live refresh token", async () => {
    await refusedLeavesOriginal(async (id, before, old) => {
      const next = await refreshToken(rig!.sim.base('whatnot'), old, before!);
      expect(next?.refreshToken).toMatch(/^wn_sim_refresh_/);
      await new RedisTokenStore(rig!.svc.rt.redis, rig!.svc.rt.keys, rig!.svc.rt.box, id).refreshed(next!, before!.refreshToken!, before);
    });
  }, 60_000);

  // While A is stalled, a worker with the old credentials and A's token (the record) is refused its
  // refresh (another app's refresh token) and drops the grant: the record went, A's undo found nothing,
  // and the old credentials were left with no record (their live refresh token lost). Now a record of
  // a pending new grant stays; the undo puts back its base.
  test("A's new grant refused after a worker with the old credentials was refused A's token: the old record is put back", async () => {
    await refusedLeavesOriginal(async (id, _before, old) => {
      const store = new RedisTokenStore(rig!.svc.rt.redis, rig!.svc.rt.keys, rig!.svc.rt.box, id);
      const seen = await store.get();
      expect(await refreshToken(rig!.sim.base('whatnot'), old, seen!)).toBeNull();
      await store.dropGrant(seen!.refreshToken);
    });
  }, 60_000);

  // A wrote its new grant's record and stalled; B took the lock, wrote its own over A's and stalled; C
  // took the lock and wrote nothing. A's undo found B's record (nothing put back), and B's put back
  // the record it replaced: A's, beside the original credentials (neither target write happened). Now
  // B's record carries the committed one (A's base: the target was not A's) and B's undo puts that back.
  test('A and B each stalled after their token write while C took the lock and wrote nothing: both 409, the original record put back', async () => {
    const { svc } = rig!;
    const { id, original } = await createTarget();
    const verifier = svc.rt.credentialVerifier;
    const saved = { lockGrant: verifier.lockGrant, keep: verifier.keep };
    const locks: GrantLock[] = [];
    const gate = () => {
      let arrive!: () => void;
      let go!: () => void;
      return { arrived: new Promise<void>((r) => (arrive = r)), gone: new Promise<void>((r) => (go = r)), arrive: () => arrive(), go: () => go() };
    };
    const gates = [gate(), gate()];
    verifier.lockGrant = async (...args) => {
      const lock = await saved.lockGrant.apply(verifier, args);
      if (lock) locks.push(lock);
      return lock;
    };
    // A's and B's token writes (each under the latest lock): the lease ends right after, and they wait.
    verifier.keep = async (...args) => {
      const i = locks.length - 1;
      const written = await saved.keep.apply(verifier, args);
      if (i < gates.length) {
        await locks[i]!.release();
        gates[i]!.arrive();
        await gates[i]!.gone;
      }
      return written;
    };
    try {
      const patch = (json: object) => svc.api(`/v1/partners/pr/targets/${id}`, { method: 'PATCH', json });
      const patchA = patch({ credentials: whatnotApp('a') });
      await gates[0]!.arrived;
      const patchB = patch({ credentials: whatnotApp('b') });
      await gates[1]!.arrived;
      expect([400, 503]).toContain((await patch({ baseUrl: 'http://no-such-host.invalid' })).status);
      gates[0]!.go();
      expect((await patchA).status).toBe(409);
      gates[1]!.go();
      expect((await patchB).status).toBe(409);
      const credentials = svc.rt.partners.openCredentials((await svc.rt.partners.getTarget('pr', id))!);
      expect(credentials).toEqual(original);
      await oneGrant(credentials, await tokenRecord(svc, id));
    } finally {
      gates.forEach((g) => g.go());
      Object.assign(verifier, saved);
    }
  }, 60_000);

  // A target write that surely did not happen for another reason than a lost hold (its compare-and-set
  // lost every round: ConcurrentUpdateError) left the new grant's record beside the old credentials.
  test("A's target write lost to concurrent updates: its new grant's record is put back", async () => {
    const { svc } = rig!;
    const { id, original } = await createTarget();
    const partners = svc.rt.partners;
    const updateTarget = partners.updateTarget;
    partners.updateTarget = async () => {
      throw new ConcurrentUpdateError(`partner pr: target ${id} changed on every round`);
    };
    try {
      const status = (await svc.api(`/v1/partners/pr/targets/${id}`, { method: 'PATCH', json: { credentials: whatnotApp('a') } })).status;
      expect(status).toBe(409); // nothing of it stands: try again (a 500 before)
    } finally {
      partners.updateTarget = updateTarget;
    }
    const credentials = partners.openCredentials((await partners.getTarget('pr', id))!);
    expect(credentials).toEqual(original);
    await oneGrant(credentials, await tokenRecord(svc, id));
  }, 60_000);

  test('A stalled past its lease with nobody taking its holds still saves (200)', async () => {
    const { a, statusA, credentials, token } = await interleave('after its token write', false, 'none');
    expect(statusA).toBe(200);
    expect(credentials).toEqual(a);
    await oneGrant(credentials, token);
  }, 60_000);

  test('A stalled after its token write while B took the lock and wrote nothing: 409 for A, its record put back', async () => {
    await refusedLeavesOriginal();
  }, 60_000);
  /** A worker's token store as the sync service builds it: it settles a pending record a PATCH left (RedisTokenStore.settleLapsed). */
  const workerStore = (id: string): RedisTokenStore => {
    const { svc } = rig!;
    return workerTokenStore(svc.rt.redis, svc.rt.keys, svc.rt.box, svc.rt.partners, { id, partnerId: 'pr' });
  };

  // A wrote its new grant's record and crashed there (its lease lapsed; it comes back only after the
  // checks, and then finds its hold another's). The same app's credentials sent again (a new
  // webhookSecret) were checked from A's pending token, another app's: a 200 that left it beside the
  // original credentials (or a 422 once it had to be refreshed). Now the PATCH settles the record
  // first by the target it read under its lock: A's target write never happened, its base goes back.
  test('A crashed after its token write; the target\'s own grant sent again is checked from the committed record (200, one grant)', async () => {
    let during: { token: AccessToken | null; before: AccessToken | null } | undefined;
    const { b, statusA, statusB, credentials, token } = await interleave('after its token write', false, 'same', async (id, before) => {
      during = { token: await tokenRecord(rig!.svc, id), before };
    });
    expect(statusB).toBe(200);
    // Before A comes back (a crashed A never does): the original grant's record beside B's credentials.
    expect(during!.token?.refreshToken).toBe(during!.before?.refreshToken);
    expect(statusA).toBe(409);
    expect(credentials).toEqual(b);
    await oneGrant(credentials, token);
  }, 60_000);

  // A wrote its new grant's record and crashed (nobody else PATCHes). Workers with the original
  // credentials were refused A's token and kept the record (dropGrant): the target's syncs failed for
  // auth until the next PATCH of its credentials. Now the refused worker settles it: its lock is free,
  // the target is not A's, the base goes back (and A, were it only stalled, is fenced out: 409).
  test('A crashed after its token write: a worker refused its token with the original credentials puts the original record back', async () => {
    let seen: AccessToken | null = null;
    let after: AccessToken | null = null;
    const { original, statusA, credentials, token } = await interleave('after its token write', false, 'none', async (id, before, old) => {
      const store = workerStore(id);
      seen = await store.get();
      expect(seen?.refreshToken).not.toBe(before?.refreshToken); // A's pending token
      expect(await refreshToken(rig!.sim.base('whatnot'), old, seen!)).toBeNull();
      expect(await store.dropGrant(seen!.refreshToken)).toBe(false); // another record now: try it
      after = await store.get();
      expect(after?.refreshToken).toBe(before?.refreshToken);
    });
    expect(after).not.toBeNull();
    expect(statusA).toBe(409);
    expect(credentials).toEqual(original);
    await oneGrant(credentials, token);
  }, 60_000);

  /** A PATCH of another app's credentials whose target write runs `write` (the real one, or not) and then fails with `error`. */
  const targetWriteFails = async (id: string, error: Error, write: boolean, meanwhile?: () => Promise<void>): Promise<number> => {
    const partners = rig!.svc.rt.partners;
    const updateTarget = partners.updateTarget;
    const a = whatnotApp('a');
    partners.updateTarget = async (...args) => {
      await meanwhile?.();
      if (write) await updateTarget.apply(partners, args);
      throw error;
    };
    try {
      return (await rig!.svc.api(`/v1/partners/pr/targets/${id}`, { method: 'PATCH', json: { credentials: a } })).status;
    } finally {
      partners.updateTarget = updateTarget;
    }
  };

  // A's target write timed out (no answer: it may have happened). Nothing put the record back, and the
  // original credentials were left beside A's token. Now a worker with the original credentials,
  // refused A's token, settles it by the target: the original record back when the write did not
  // happen; A's record left beside A's credentials when it did (committed).
  test.each([false, true])("A's target write timed out (it happened: %s): a worker refused A's token with the original credentials settles the record by the target", async (happened) => {
    const { svc } = rig!;
    const { id, original } = await createTarget();
    const before = await tokenRecord(svc, id);
    expect(await targetWriteFails(id, new Error('Command timed out'), happened)).toBeGreaterThanOrEqual(500);
    const store = workerStore(id);
    const seen = await store.get();
    expect(await refreshToken(rig!.sim.base('whatnot'), original, seen!)).toBeNull();
    // Not A's record any more (false: try the record's), or A's kept (true).
    expect(await store.dropGrant(seen!.refreshToken)).toBe(happened);
    const credentials = svc.rt.partners.openCredentials((await svc.rt.partners.getTarget('pr', id))!);
    const token = await tokenRecord(svc, id);
    if (happened) expect(credentials).not.toEqual(original);
    else expect([credentials, token?.refreshToken]).toEqual([original, before?.refreshToken]);
    await oneGrant(credentials, token);
  }, 60_000);

  /** A PATCH of the target's credentials, checked, that saves them (200). */
  const patchSaved = async (id: string, credentials: Record<string, string>): Promise<void> => {
    expect((await rig!.svc.api(`/v1/partners/pr/targets/${id}`, { method: 'PATCH', json: { credentials } })).status).toBe(200);
  };

  // A's new grant saved (its record pending, committed), then A's grant sent again (a new
  // webhookSecret, its check from A's token): that PATCH seals the credentials again, and the target
  // no longer hashes to A's `commits`. The next PATCH's settle took A's record for one whose target
  // write never happened and put back its base, the original app's grant, beside A's credentials. Now
  // a PATCH's settle finishes a committed record (its `pending` goes) before it writes the target.
  test("A's new grant saved, then its own grant sent again twice: A's record stays beside A's credentials", async () => {
    const { svc } = rig!;
    const { id } = await createTarget();
    const a = whatnotApp('a');
    const patch = (credentials: Record<string, string>): Promise<void> => patchSaved(id, credentials);
    await patch(a);
    await patch({ ...a, webhookSecret: whsec() });
    const last = { ...a, webhookSecret: whsec() };
    await patch(last);
    const credentials = svc.rt.partners.openCredentials((await svc.rt.partners.getTarget('pr', id))!);
    expect(credentials).toEqual(last);
    await oneGrant(credentials, await tokenRecord(svc, id));
  }, 60_000);

  // A's new grant saved and its record left pending (the version before never finished it), then
  // A's credentials sealed again without a settle: by the version before (a PATCH of A's grant with
  // ?verify=false or a new webhookSecret, or the SECRETS_KEY rotation's re-seal: its token write left
  // `pending` as it was), or by anything that re-seals the target. The record named the hash of A's
  // sealed text only, which the target no longer was: the next PATCH's settle took A's target write
  // for one that never happened and put back the original app's grant beside A's credentials (a 200
  // beside it; A's rotated refresh token, the only live one, thrown away). Now it is told by
  // the plaintext, and a record of the version before (no `identity`) keeps its pending token.
  test.each(['the version before (no identity)', 'this version'])("A's pending record (%s), A's credentials sealed again without a settle: the next PATCH keeps A's grant", async (written) => {
    const { svc } = rig!;
    const { id } = await createTarget();
    const a = whatnotApp('a');
    const patch = (credentials: Record<string, string>): Promise<void> => patchSaved(id, credentials);
    await patch(a);
    const key = svc.rt.keys.targetToken(id);
    const record = JSON.parse(svc.rt.box.decrypt((await svc.rt.redis.get(key))!)) as AccessToken;
    expect(record.pending?.commits).toBeDefined();
    if (written !== 'this version') {
      delete record.pending!.identity;
      await svc.rt.redis.set(key, svc.rt.box.encrypt(JSON.stringify(record)));
    }
    const partners = svc.rt.partners;
    expect(await partners.updateTarget('pr', id, (t) => ({ ...t, credentialsSealed: partners.sealCredentials({ ...a, webhookSecret: whsec() }) }))).not.toBeNull();
    const last = { ...a, webhookSecret: whsec() };
    await patch(last);
    const credentials = partners.openCredentials((await partners.getTarget('pr', id))!);
    expect(credentials).toEqual(last);
    await oneGrant(credentials, await tokenRecord(svc, id));
  }, 60_000);

  // A target with no token record (a target of an earlier version, or one whose record went): a
  // worker's refresh from none, with the credentials' refresh token (rotated), while A's new grant was
  // pending went nowhere (A's base is none), and A's undo deleted the record: the credentials' refresh
  // token, dead, was all that was left. Now such a refresh goes into the base too.
  test("A's new grant undone after a worker refreshed from no record meanwhile: the live refresh token is put back", async () => {
    const { svc } = rig!;
    // Saved unchecked (its refresh token unused) and its record gone: a target of an earlier version.
    const id = `wg${++n}`;
    const original = whatnotApp('x');
    const created = await svc.api('/v1/partners/pr/targets?verify=false', { json: { id, platform: 'whatnot', name: 'Whatnot app', credentials: original, baseUrl: rig!.proxy.url, commissionRateBps: 800 } });
    expect(created.status).toBe(201);
    await svc.rt.redis.del(svc.rt.keys.targetToken(id));
    const status = await targetWriteFails(id, new ConcurrentUpdateError(`partner pr: target ${id} changed on every round`), false, async () => {
      const next = await refreshToken(rig!.sim.base('whatnot'), original, { accessToken: '', expiresAt: 0, refreshToken: original.refreshToken! });
      expect(next?.refreshToken).toMatch(/^wn_sim_refresh_/);
      await workerStore(id).refreshed(next!, original.refreshToken!, null);
    });
    expect(status).toBe(409);
    const credentials = svc.rt.partners.openCredentials((await svc.rt.partners.getTarget('pr', id))!);
    expect(credentials).toEqual(original);
    await oneGrant(credentials, await tokenRecord(svc, id));
  }, 60_000);

  // A sent the target's own grant again; its check refreshed the record (Whatnot rotated its refresh
  // token) and A stalled past its lease. B took the lock and wrote another app's new grant (its base:
  // the record A's check rotated away). A came back, found its hold B's and kept what its check
  // refreshed (unfenced): the record was B's, so it went nowhere. B's target write then failed and
  // its undo put back the base, a dead refresh token beside the original credentials. Now A's refresh
  // goes into B's base.
  test("A's refresh of the same grant, kept after it lost its hold to B, survives B's undo", async () => {
    const { svc, sim } = rig!;
    const { id, original } = await createTarget();
    await sim.control('POST', '/_sim/whatnot/tokens/expire', {});
    const verifier = svc.rt.credentialVerifier;
    const partners = svc.rt.partners;
    const saved = { lockGrant: verifier.lockGrant, updateTarget: partners.updateTarget };
    const signal = () => {
      let open!: () => void;
      const opened = new Promise<void>((r) => (open = r));
      return { opened, open: () => open() };
    };
    const [aStalled, aGo, bAtWrite, aDone] = [signal(), signal(), signal(), signal()];
    let first = true;
    verifier.lockGrant = async (...args) => {
      const lock = await saved.lockGrant.apply(verifier, args);
      if (!lock || !first) return lock;
      first = false;
      return {
        ...lock,
        renew: async () => {
          const held = await lock.renew();
          await lock.release(); // its lease over: renewals stopped, as in a frozen process
          aStalled.open();
          await aGo.opened;
          return held;
        },
      };
    };
    // B's target write (the first: A's token write finds its hold B's first) waits for A, then fails.
    let writes = 0;
    partners.updateTarget = async (...args) => {
      if (writes++ > 0) return saved.updateTarget.apply(partners, args);
      bAtWrite.open();
      await aDone.opened;
      throw new ConcurrentUpdateError(`partner pr: target ${id} changed on every round`);
    };
    try {
      const patch = (json: object) => svc.api(`/v1/partners/pr/targets/${id}`, { method: 'PATCH', json });
      const patchA = patch({ credentials: { ...original, webhookSecret: whsec() } });
      await aStalled.opened;
      const patchB = patch({ credentials: whatnotApp('b') });
      await bAtWrite.opened;
      aGo.open();
      expect((await patchA).status).toBe(409);
      aDone.open();
      expect((await patchB).status).toBe(409);
    } finally {
      aGo.open();
      aDone.open();
      Object.assign(verifier, { lockGrant: saved.lockGrant });
      partners.updateTarget = saved.updateTarget;
    }
    const credentials = partners.openCredentials((await partners.getTarget('pr', id))!);
    expect(credentials).toEqual(original);
    await oneGrant(credentials, await tokenRecord(svc, id));
  }, 60_000);
});

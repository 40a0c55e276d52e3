/**
 * sharedLookup's slots (src/lib/ssrf.ts): whatever the interleaving of lookups of several owners and
 * names — answers and failures, waits for a slot that time out, lookups of a name already in flight —
 * no more than the lookup concurrency are in flight, never two of one name, every call settles, and
 * once all did, every slot is free again: a slot kept by a path that gave up (a timed-out wait for the
 * process's slot while holding the owner's, a hand-over to a caller that then shared a lookup another
 * caller started) would leave its owner, or the whole process, waiting for ever (each later lookup
 * an ETIMEOUT). The system resolver is swapped (hostLookup) for one answering after a chosen time.
 */
import fc from 'fast-check';
import { DEFAULT_LOOKUP_CONCURRENCY, hostLookup, setLookupConcurrency, sharedLookup } from '../../src/lib/ssrf.js';

const system = hostLookup.lookup;
afterAll(() => {
  hostLookup.lookup = system;
  setLookupConcurrency(DEFAULT_LOOKUP_CONCURRENCY);
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const Call = fc.record({
  owner: fc.constantFrom('pa', 'pb', 'pc', 'pd'),
  name: fc.constantFrom('a.example', 'b.example', 'c.example', 'd.example', 'e.example'),
  startMs: fc.integer({ min: 0, max: 30 }),
  waitMs: fc.integer({ min: 0, max: 30 }),
  holdMs: fc.integer({ min: 0, max: 40 }),
  fails: fc.boolean(),
});

test('slots: the cap and one lookup per name hold, every call settles, and all slots are free afterwards', async () => {
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 1, max: 3 }), fc.array(Call, { minLength: 1, maxLength: 14 }), async (cap, calls) => {
      setLookupConcurrency(cap);
      const inFlight = new Set<string>();
      let most = 0;
      let twice = false;
      /** What the next system lookup of a name does: the call that (maybe) starts it says. */
      const plan = new Map<string, { holdMs: number; fails: boolean }[]>();
      hostLookup.lookup = async (name) => {
        if (inFlight.has(name)) twice = true;
        inFlight.add(name);
        most = Math.max(most, inFlight.size);
        const step = plan.get(name)?.shift() ?? { holdMs: 0, fails: false };
        try {
          await sleep(step.holdMs);
        } finally {
          inFlight.delete(name);
        }
        if (step.fails) throw Object.assign(new Error(`getaddrinfo EAI_AGAIN ${name}`), { code: 'EAI_AGAIN' });
        return [{ address: '192.0.2.1' }];
      };
      for (const c of calls) plan.set(c.name, [...(plan.get(c.name) ?? []), { holdMs: c.holdMs, fails: c.fails }]);
      const settled = await Promise.allSettled(calls.map(async (c) => {
        await sleep(c.startMs);
        return sharedLookup(c.name, c.owner, c.waitMs);
      }));
      expect(settled).toHaveLength(calls.length); // (each settled: allSettled returned)
      expect(twice).toBe(false);
      expect(most).toBeLessThanOrEqual(cap);
      for (const s of settled) {
        if (s.status === 'rejected') expect(['ETIMEOUT', 'EAI_AGAIN']).toContain((s.reason as NodeJS.ErrnoException).code);
      }

      // Every slot free: `cap` lookups of new owners start at once (no wait allowed), and so does one of each owner.
      plan.clear();
      const fresh = Array.from({ length: cap }, (_, i) => sharedLookup(`free-${i}.example`, `fresh-${i}`, 0));
      await expect(Promise.all(fresh)).resolves.toHaveLength(cap);
      for (const owner of new Set(calls.map((c) => c.owner))) {
        await expect(sharedLookup(`probe.${owner}.example`, owner, 0)).resolves.toEqual([{ address: '192.0.2.1' }]);
      }
    }),
    { numRuns: 60 },
  );
}, 60_000);

test("a caller handed the process's slot that then shares a lookup another caller started gives the slot back", async () => {
  // The interleaving the property above reaches only rarely: cap 2, both slots busy (a, c); two
  // owners wait for a slot for the same name b; a ends and hands its slot to the first, which
  // starts b; c ends and hands its slot to the second, which finds b in flight and shares it: it
  // must give that slot back, or the process has one lookup fewer for good.
  setLookupConcurrency(2);
  const hold: Record<string, number> = { 'a.example': 30, 'c.example': 60, 'b.example': 100 };
  hostLookup.lookup = async (name) => {
    await sleep(hold[name] ?? 0);
    return [{ address: '192.0.2.1' }];
  };
  const busy = [sharedLookup('a.example', 'qa', 0), sharedLookup('c.example', 'qc', 0)];
  await sleep(5);
  const waiters = [sharedLookup('b.example', 'qb', 1_000), sharedLookup('b.example', 'qd', 1_000)];
  await Promise.all([...busy, ...waiters]);
  // Both slots free: two lookups of new owners start at once (no wait allowed).
  await expect(Promise.all([sharedLookup('free-x.example', 'qx', 0), sharedLookup('free-y.example', 'qy', 0)])).resolves.toHaveLength(2);
});

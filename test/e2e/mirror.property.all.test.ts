/**
 * Issue 4: duplicate and out-of-order events across all five platforms converge, with each effect
 * exactly once and the same effects as in-order delivery (fast-check permutations with duplicates;
 * the events of a phase are delivered before the workers drain, as in mirror.property.test.ts).
 */
import fc from 'fast-check';
import type { Platform } from '../../src/targets/target.adapter.js';
import { createPartner, sendEvent, showEvent, startService, waitFor, type TestService } from '../helpers/service.js';
import { runsFor } from '../helpers/redis-cluster.js';
import { phaseEvents, type Ev } from '../helpers/phases.js';
import { startSim, type TestSim } from '../helpers/sim.js';
import { addAllTargets, ALL_PLATFORMS, linkOperatorShows } from '../helpers/platforms.js';

let svc: TestService;
let sim: TestSim;
let secret: string;

function phases(showId: string): Ev[][] {
  const { base, t, ev, pin } = phaseEvents(showId);
  return [
    [ev(showEvent('show.scheduled', { ...base, title: 'Early title' }, t(0))), ev(showEvent('show.updated', { ...base, title: 'Final title' }, t(1)))],
    [ev(showEvent('show.live', { ...base, title: 'Final title', state: 'live' }, t(2))), pin('product.pinned', 'p1', 3), pin('product.pinned', 'p2', 4), pin('product.unpinned', 'p2', 5)],
    [pin('product.unpinned', 'p1', 10), pin('product.pinned', 'p2', 11)],
    [ev(showEvent('show.ended', { ...base, title: 'Final title', state: 'ended' }, t(20)))],
  ];
}

type Observed = Record<string, { state: string; pins: string[]; effects: string[] }>;

async function observe(showId: string, effectsSeen: Map<Platform, number>): Promise<Observed> {
  const doc = (await (await svc.api(`/v1/partners/tsl/shows/${showId}`)).json()) as {
    mirrors: { platform: Platform; state: string; externalId: string; pins: { productId: string; state: string }[]; lastError: string | null }[];
  };
  const out: Observed = {};
  for (const m of doc.mirrors) {
    const all = await sim.effects(m.platform);
    // This show's effects: everything since the show started on this platform (runs are sequential).
    const mine = all.slice(effectsSeen.get(m.platform) ?? 0);
    const effects = await Promise.all(
      mine.map(async (e) => {
        const code = e.url?.split('/l/')[1];
        const link = code ? await svc.rt.links.find(code) : null;
        const product = link?.productId ?? e.productId;
        return [e.type, e.type === 'show.created' || e.type === 'show.updated' ? (e.title ?? '').replace(showId, 'S') : '', product ?? ''].join('|');
      }),
    );
    out[m.platform] = { state: m.state, pins: m.pins.map((p) => `${p.productId}:${p.state}`), effects };
    expect(m.lastError).toBeNull();
  }
  return out;
}

async function drain(showId: string): Promise<void> {
  await svc.startWorkers();
  await waitFor(async () => {
    const v = await svc.rt.shows.version('tsl', showId);
    const ms = await Promise.all(ALL_PLATFORMS.map((p) => svc.rt.shows.getMirror('tsl', showId, p)));
    return ms.every((m) => m && m.syncedVersion === v && m.retries === 0 && !['pending', 'provisioning'].includes(m.state) && m.remote?.data['attach'] !== '1');
  }, 30_000);
  await svc.stopWorkers();
}

async function run(showId: string, order: (phase: Ev[], i: number) => Ev[]): Promise<Observed[]> {
  const start = new Map<Platform, number>();
  for (const p of ALL_PLATFORMS) start.set(p, (await sim.effects(p)).length);
  const seen: Observed[] = [];
  let i = 0;
  for (const phase of phases(showId)) {
    for (const e of order(phase, i)) {
      const r = await sendEvent(svc, 'tsl', secret, e.body, { webhookId: e.webhookId });
      expect([200, 202]).toContain(r.status);
    }
    await drain(showId);
    if (i === 0) {
      await linkOperatorShows(svc, sim, 'tsl', showId);
      await drain(showId);
    }
    seen.push(await observe(showId, start));
    i += 1;
  }
  return seen;
}

beforeAll(async () => {
  sim = await startSim();
  // no video is pushed here: a simulated encoder makes YouTube's bound stream active (see docs/testing.md)
  await sim.control('PUT', '/_sim/youtube/limits', { simulatedEncoder: 1 });
  svc = await startService();
  secret = await createPartner(svc, 'tsl');
  await addAllTargets(svc, sim, 'tsl', { lift: true });
});

afterAll(async () => {
  await svc?.close();
  await sim?.close();
});

test('all five platforms: permuted, duplicated events give the in-order effects, each once', async () => {
  const reference = await run('ref', (p) => p);
  const last = reference[3]!;
  expect(Object.keys(last).sort()).toEqual([...ALL_PLATFORMS].sort());
  for (const p of ALL_PLATFORMS) expect(last[p]!.state).toBe('ended');
  // Each pin reached every platform exactly once (p1 in phase 2, p2 in phase 3).
  expect(last['youtube']!.effects).toEqual(['show.created|Final title|', 'show.started||', 'message.posted||p1', 'message.posted||p2', 'show.ended||']);
  expect(last['whatnot']!.effects.filter((e) => e.startsWith('product.'))).toEqual(['product.pinned||p1', 'product.unpinned||p1', 'product.pinned||p2']);

  let runNo = 0;
  const phaseOrder = (len: number) =>
    fc.array(fc.integer({ min: 1, max: 3 }), { minLength: len, maxLength: len }).chain((counts) => {
      const expanded = counts.flatMap((c, i) => Array.from({ length: c }, () => i));
      return fc.shuffledSubarray(expanded, { minLength: expanded.length, maxLength: expanded.length });
    });
  await fc.assert(
    fc.asyncProperty(fc.tuple(...phases('x').map((p) => phaseOrder(p.length))), async (orders) => {
      const seen = await run(`perm${++runNo}`, (phase, i) => orders[i]!.map((k) => phase[k]!));
      expect(seen).toEqual(reference);
    }),
    // Out of time before every run passed is a failure, not a pass.
    { numRuns: runsFor(12), endOnFailure: true, interruptAfterTimeLimit: 280_000, markInterruptAsFailure: true },
  );
}, 300_000);

/**
 * Property (fast-check): any permutation, with duplicates, of a show's events converges to the same
 * final mirror state and the same simulator effects as in-order delivery. Events of a phase are all
 * delivered before the workers drain, so that both orders ask the mirror for the same thing; the
 * desired-state registers must make the permuted delivery indistinguishable from the ordered one.
 */
import fc from 'fast-check';
import { sendEvent, showEvent, waitFor, type TestService } from '../helpers/service.js';
import { runsFor } from '../helpers/redis-cluster.js';
import { phaseEvents, type Ev } from '../helpers/phases.js';
import type { TestSim } from '../helpers/sim.js';
import { simRigPerFile, simTarget } from '../helpers/mirrors.js';

let svc: TestService;
let sim: TestSim;
let secret: string;

function phases(showId: string): Ev[][] {
  const { base, t, ev, pin } = phaseEvents(showId);
  return [
    [
      ev(showEvent('show.scheduled', { ...base, title: 'First title' }, t(0))),
      ev(showEvent('show.updated', { ...base, title: 'Second title' }, t(1))),
      ev(showEvent('show.live', { ...base, title: 'Second title', state: 'live' }, t(2))),
      pin('product.pinned', 'p1', 3),
      pin('product.pinned', 'p2', 4),
      ev({ type: 'product.updated', occurredAt: t(5), data: { showId, product: { id: 'p1', title: 'Lip Oil (new shade)', price: { amount: 1900, currency: 'USD' }, url: 'https://shop.example.com/p1b' } } }),
      pin('product.unpinned', 'p2', 6),
    ],
    [pin('product.unpinned', 'p1', 10), pin('product.pinned', 'p2', 11), ev(showEvent('show.updated', { ...base, title: 'Third title', state: 'live', pinnedProductIds: ['p1'] }, t(9)))],
    [ev(showEvent('show.ended', { ...base, title: 'Third title', state: 'ended', pinnedProductIds: ['p2'] }, t(20))), pin('product.pinned', 'p1', 15)],
  ];
}

interface Observed {
  mirror: { state: string; pins: { productId: string; state: string }[]; lastError: string | null };
  effects: { type: string; title?: string; product?: string }[];
}

async function observe(showId: string): Promise<Observed> {
  const doc = (await (await svc.api(`/v1/partners/tsl/shows/${showId}`)).json()) as {
    mirrors: { state: string; externalId: string; pins: { productId: string; state: string }[]; lastError: string | null }[];
  };
  const m = doc.mirrors[0]!;
  const effects = await Promise.all(
    (await sim.effects('youtube'))
      .filter((e) => e.externalId === m.externalId)
      .map(async (e) => {
        // Tracked links differ per show; compare them by the product they lead to.
        const code = e.url?.split('/l/')[1];
        const link = code ? await svc.rt.links.find(code) : null;
        return { type: e.type, ...(e.type === 'show.created' || e.type === 'show.updated' ? { title: e.title } : {}), ...(link ? { product: link.productId } : {}) };
      }),
  );
  return { mirror: { state: m.state, pins: m.pins.map((p) => ({ productId: p.productId, state: p.state })), lastError: m.lastError }, effects };
}

/** Drain: workers run until the mirror has synced the current desired version. */
async function drain(showId: string): Promise<void> {
  await svc.startWorkers();
  await waitFor(async () => {
    const v = await svc.rt.shows.version('tsl', showId);
    const m = await svc.rt.shows.getMirror('tsl', showId, 'yt');
    return m && m.syncedVersion === v && m.retries === 0 && (m.state === 'live' || m.state === 'ended');
  }, 20_000);
  await svc.stopWorkers();
}

async function run(showId: string, order: (phase: Ev[]) => Ev[]): Promise<Observed[]> {
  const seen: Observed[] = [];
  for (const phase of phases(showId)) {
    for (const e of order(phase)) {
      const r = await sendEvent(svc, 'tsl', secret, e.body, { webhookId: e.webhookId });
      expect([200, 202]).toContain(r.status);
    }
    await drain(showId);
    seen.push(await observe(showId));
  }
  return seen;
}

simRigPerFile('tsl', (s) => [simTarget(s, 'youtube', { id: 'yt', name: 'YT', commissionRateBps: 500 })], (rig) => ({ sim, svc, secret } = rig), {
  service: {},
  prepare: (s) => s.control('PUT', '/_sim/youtube/limits', { simulatedEncoder: 1, streamActivationMs: 0, quotaPerDay: 10_000_000 }),
});

test('permuted and duplicated events converge to the in-order result', async () => {
  const reference = await run('ref', (p) => p);
  // Sanity: the reference itself is what the events mean.
  expect(reference[0]!.mirror).toEqual({ state: 'live', pins: [{ productId: 'p1', state: 'pinned' }], lastError: null });
  expect(reference[0]!.effects).toEqual([{ type: 'show.created', title: 'Second title' }, { type: 'show.started' }, { type: 'message.posted', product: 'p1' }]);
  expect(reference[1]!.mirror.pins).toEqual([
    { productId: 'p1', state: 'unpinned' },
    { productId: 'p2', state: 'pinned' },
  ]);
  expect(reference[2]!.mirror.state).toBe('ended');
  expect(reference[2]!.effects.map((e) => e.type)).toEqual(['show.created', 'show.started', 'message.posted', 'show.updated', 'message.posted', 'show.ended']);

  let runNo = 0;
  // Per phase: every event 1-3 times, in any order.
  const phaseOrder = (len: number) =>
    fc.array(fc.integer({ min: 1, max: 3 }), { minLength: len, maxLength: len }).chain((counts) => {
      const expanded = counts.flatMap((c, i) => Array.from({ length: c }, () => i));
      return fc.shuffledSubarray(expanded, { minLength: expanded.length, maxLength: expanded.length });
    });
  const lens = phases('x').map((p) => p.length);
  await fc.assert(
    fc.asyncProperty(fc.tuple(...lens.map(phaseOrder)), async (orders) => {
      const showId = `perm${++runNo}`;
      let phaseNo = 0;
      const seen = await run(showId, (phase) => orders[phaseNo++]!.map((i) => phase[i]!));
      expect(seen).toEqual(reference);
    }),
    // Out of time before every run passed is a failure, not a pass.
    { numRuns: runsFor(25), endOnFailure: true, interruptAfterTimeLimit: 220_000, markInterruptAsFailure: true },
  );
}, 240_000);

/**
 * Property (fast-check) that can find races (issue 13): generated shows — titles (unicode, `<`/`>`,
 * over-long), products, prices, pins, unpins, product and title updates at generated times — are
 * delivered shuffled and duplicated, in concurrent batches, *while the workers run* (not before they
 * start, as in mirror.property.test.ts). Whatever interleaving the workers see, the mirrors converge
 * to what the events mean (a model written here, replaying them in time order), and the platforms show
 * it: YouTube's broadcast carries the final title and was created and started once; Whatnot's lineup
 * holds exactly the products pinned at the end. Real Redis, real BullMQ workers, simulators over HTTP.
 */
import fc from 'fast-check';
import { linkOperatorShows } from '../helpers/platforms.js';
import { createPartner, sendEvent, showEvent, startService, waitFor, type TestService } from '../helpers/service.js';
import { settled, syncQueues } from '../helpers/settle.js';
import { startSim, type TestSim } from '../helpers/sim.js';
import { CREDENTIALS } from '../helpers/platforms.js';

const P = 'live';
let svc: TestService;
let sim: TestSim;
let secret: string;

beforeAll(async () => {
  sim = await startSim();
  await sim.control('PUT', '/_sim/youtube/limits', { simulatedEncoder: 1, streamActivationMs: 0, quotaPerDay: null, requestsPerWindow: null });
  await sim.control('PUT', '/_sim/whatnot/limits', { requestsPerWindow: null });
  svc = await startService({ env: { WORKER_CONCURRENCY: '8' } });
  secret = await createPartner(svc, P);
  // Target id = platform name (what linkOperatorShows expects).
  for (const [id, credentials] of [
    ['youtube', CREDENTIALS.youtube],
    ['whatnot', { accessToken: CREDENTIALS.whatnot.accessToken! }],
  ] as const) {
    const r = await svc.api(`/v1/partners/${P}/targets`, {
      json: { id, platform: id, name: id, credentials, baseUrl: sim.base(id), commissionRateBps: 500, rateLimit: { requests: 10_000, windowMs: 1000 } },
    });
    expect(r.status).toBe(201);
  }
  await svc.startWorkers(); // running before the first event and throughout
});
afterAll(async () => {
  await svc?.close();
  await sim?.close();
});

// Titles: mostly what a partner types (letters, digits, punctuation, emoji), sometimes what YouTube
// refuses as is (`<`, `>`, more than 100 characters).
const safeChar = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.,!?&\'"():;#%/éüñßçåø'.split(''), '💄', '🛍', '✨');
const safeTitle = fc.array(safeChar, { minLength: 1, maxLength: 60 }).map((cs) => cs.join('')).filter((s) => s.trim().length > 0);
const wildTitle = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 140 }).filter((s) => s.trim().length > 0);
const title = fc.oneof({ weight: 4, arbitrary: safeTitle }, { weight: 1, arbitrary: wildTitle });

const product = fc.record({ id: fc.stringMatching(/^[a-z][a-z0-9]{0,6}$/), title: safeTitle, price: fc.integer({ min: 1, max: 1_000_000 }) });
const op = fc.oneof(
  fc.record({ kind: fc.constant('title' as const), title }),
  fc.record({ kind: fc.constant('pin' as const), product: fc.nat() }),
  fc.record({ kind: fc.constant('pin' as const), product: fc.nat() }),
  fc.record({ kind: fc.constant('unpin' as const), product: fc.nat() }),
  fc.record({ kind: fc.constant('product' as const), product: fc.nat(), title: safeTitle, price: fc.integer({ min: 1, max: 1_000_000 }) }),
);
const script = fc.record({
  title,
  products: fc.uniqueArray(product, { selector: (p) => p.id, minLength: 1, maxLength: 3 }),
  ops: fc.array(fc.record({ op, gapS: fc.integer({ min: 1, max: 900 }) }), { minLength: 1, maxLength: 10 }),
  copies: fc.array(fc.integer({ min: 1, max: 2 }), { minLength: 12, maxLength: 12 }),
  order: fc.integer(),
  batch: fc.integer({ min: 1, max: 5 }),
});
type Script = typeof script extends fc.Arbitrary<infer T> ? T : never;

interface Model {
  title: string;
  pinned: Set<string>;
  everPinned: Set<string>;
}

interface Ev {
  webhookId: string;
  body: unknown;
}

/** The script's events (with their times) and what they mean, replayed in time order. */
function build(showId: string, s: Script): { first: Ev; rest: Ev[]; model: Model } {
  const t0 = Date.parse('2026-11-24T17:00:00Z');
  const at = (ms: number): string => new Date(ms).toISOString();
  const products = new Map(s.products.map((p) => [p.id, { id: p.id, title: p.title, price: { amount: p.price, currency: 'USD' }, url: `https://shop.example.com/${p.id}` }]));
  const model: Model = { title: s.title, pinned: new Set(), everPinned: new Set() };
  const snapshot = (state: string) => ({ id: showId, title: model.title, scheduledAt: '2026-11-24T18:00:00Z', state, products: [...products.values()], pinnedProductIds: [...model.pinned].sort() });
  let n = 0;
  const ev = (body: unknown): Ev => ({ webhookId: `${showId}-${++n}`, body });
  const first = ev(showEvent('show.scheduled', snapshot('scheduled'), at(t0)));
  let t = t0 + 60_000;
  const rest: Ev[] = [ev(showEvent('show.live', snapshot('live'), at(t)))];
  const ids = [...products.keys()];
  for (const { op: o, gapS } of s.ops) {
    t += gapS * 1000;
    if (o.kind === 'title') {
      model.title = o.title;
      rest.push(ev(showEvent('show.updated', snapshot('live'), at(t))));
    } else if (o.kind === 'product') {
      const id = ids[o.product % ids.length]!;
      const p = { ...products.get(id)!, title: o.title, price: { amount: o.price, currency: 'USD' } };
      products.set(id, p);
      rest.push(ev({ type: 'product.updated', occurredAt: at(t), data: { showId, product: p } }));
    } else {
      const id = ids[o.product % ids.length]!;
      if (o.kind === 'pin') {
        model.pinned.add(id);
        model.everPinned.add(id);
      } else model.pinned.delete(id);
      rest.push(ev({ type: o.kind === 'pin' ? 'product.pinned' : 'product.unpinned', occurredAt: at(t), data: { showId, productId: id } }));
    }
  }
  return { first, rest, model };
}

/** Duplicates (1–2 copies) and shuffles the events with the script's own seed. */
function deliveryOrder(events: Ev[], s: Script): Ev[] {
  const out = events.flatMap((e, i) => Array.from({ length: s.copies[i % s.copies.length]! }, () => e));
  let a = s.order >>> 0;
  const rand = (): number => {
    a = (Math.imul(a ^ (a >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return a / 4294967296;
  };
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

async function send(e: Ev): Promise<void> {
  const r = await sendEvent(svc, P, secret, e.body, { webhookId: e.webhookId });
  expect([200, 202]).toContain(r.status);
}

let runNo = 0;

test('generated shows, delivered shuffled and duplicated while the workers run, converge to what the events mean', async () => {
  await fc.assert(
    fc.asyncProperty(script, async (s) => {
      const showId = `g${++runNo}`;
      const { first, rest, model } = build(showId, s);
      await send(first);
      await linkOperatorShows(svc, sim, P, showId, ['whatnot']);
      const stream = deliveryOrder(rest, s);
      for (let i = 0; i < stream.length; i += s.batch) await Promise.all(stream.slice(i, i + s.batch).map(send));

      // Converged: both mirrors have synced the current version and nothing is left to run.
      await waitFor(async () => {
        const v = await svc.rt.shows.version(P, showId);
        const ms = await Promise.all(['youtube', 'whatnot'].map((t) => svc.rt.shows.getMirror(P, showId, t)));
        return ms.every((m) => m && m.syncedVersion === v && m.state === 'live' && m.retries === 0);
      }, 60_000);
      await settled(syncQueues(svc));

      const doc = (await (await svc.api(`/v1/partners/${P}/shows/${showId}`)).json()) as { mirrors: { targetId: string; state: string; externalId: string; lastError: string | null; pins: { productId: string; state: string }[] }[] };
      const pinnedIn = (targetId: string): string[] =>
        doc.mirrors
          .find((m) => m.targetId === targetId)!
          .pins.filter((p) => p.state === 'pinned')
          .map((p) => p.productId)
          .sort();
      for (const m of doc.mirrors) expect({ target: m.targetId, state: m.state, lastError: m.lastError }).toEqual({ target: m.targetId, state: 'live', lastError: null });
      expect(pinnedIn('youtube')).toEqual([...model.pinned].sort());
      expect(pinnedIn('whatnot')).toEqual([...model.pinned].sort());

      // YouTube: one broadcast, started once, carrying the final title (as YouTube allows it).
      const yt = doc.mirrors.find((m) => m.targetId === 'youtube')!;
      const ytFx = (await sim.effects('youtube')).filter((e) => e.externalId === yt.externalId);
      expect(ytFx.filter((e) => e.type === 'show.created')).toHaveLength(1);
      expect(ytFx.filter((e) => e.type === 'show.started')).toHaveLength(1);
      const shown = ytFx.filter((e) => e.type === 'show.created' || e.type === 'show.updated').at(-1)!.title!;
      if (model.title.length <= 100 && !/[<>]/.test(model.title)) expect(shown).toBe(model.title);
      else expect(shown.length <= 100 && !/[<>]/.test(shown) && shown.trim().length > 0).toBe(true);
      // Chat messages only for products that were pinned, and one at least for each pinned now.
      const posted = await Promise.all(ytFx.filter((e) => e.type === 'message.posted').map(async (e) => (await svc.rt.links.find(e.url!.split('/l/')[1]!))?.productId));
      for (const p of posted) expect(model.everPinned.has(p!)).toBe(true);
      for (const p of model.pinned) expect(posted).toContain(p);

      // Whatnot: the lineup of the linked show is exactly the products pinned at the end.
      const wn = doc.mirrors.find((m) => m.targetId === 'whatnot')!;
      const lineup = new Set<string>();
      for (const e of (await sim.effects('whatnot')).filter((x) => x.externalId === wn.externalId)) {
        if (e.type === 'product.pinned') lineup.add(e.productId!);
        if (e.type === 'product.unpinned') lineup.delete(e.productId!);
      }
      expect([...lineup].sort()).toEqual([...model.pinned].sort());
    }),
    // Out of time before every run passed is a failure, not a pass (fast-check's default would pass).
    { numRuns: 20, interruptAfterTimeLimit: 200_000, markInterruptAsFailure: true, endOnFailure: true },
  );
}, 240_000);

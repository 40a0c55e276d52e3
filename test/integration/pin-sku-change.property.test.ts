/**
 * Property (fast-check): any sequence of sku changes (product.updated), pins and unpins of two products,
 * some delivered twice, with sync runs in between — some of them dying once their Whatnot request is out
 * (the request landing after), some timing out on one that lands late — ends with the platforms holding
 * exactly what the show pins under each product's latest sku: Whatnot's lineup is the set of the pinned
 * products' ids (two products may share one), TikTok got one promotion link per product each time it
 * was pinned or its id changed while pinned (never twice for one, but for a promotion-link request that
 * failed — timed out, as it may on a loaded machine — and was asked for again), and every pin records the
 * id it was sent with. Between two undisturbed runs Whatnot's lineup changed by exactly the difference (each
 * effect once), unless one product gave up an id that another took up in the same run (then the id may
 * be removed and added again: the end state is the same).
 *
 * Real redis-server, the real SyncService and adapters, the simulators (behind a proxy that holds a
 * Whatnot or TikTok request). No workers: the test plays the runs, as BullMQ would.
 */
import fc from 'fast-check';
import { setTimeout as sleep } from 'node:timers/promises';
import { platformCalls } from '../../src/lib/metrics.js';
import { CREDENTIALS } from '../helpers/platforms.js';
import { runsFor } from '../helpers/redis-cluster.js';
import { sampleShow, sendEvent, showEvent } from '../helpers/service.js';
import { useLateRig } from '../helpers/late-rig.js';

const TIMEOUT_MS = 300;
const HOLD_MS = 450;
const PARTNER = 'skp';
const PRODUCTS = ['a1', 'a2'] as const;
type Sku = 'S1' | 'S2' | null;

const rig = useLateRig({
  limits: { whatnot: { requestsPerWindow: null }, tiktok: { requestsPerWindow: null } },
  env: { PLATFORM_TIMEOUT_MS: String(TIMEOUT_MS), PLATFORM_SETTLE_MS: '100' },
  partnerId: PARTNER,
});

beforeAll(async () => {
  for (const [id, platform, base] of [
    ['wn', 'whatnot', `${rig.proxy.url}/whatnot`],
    ['tt', 'tiktok', `${rig.proxy.url}/tiktok`],
  ] as const) {
    const r = await rig.svc.api(`/v1/partners/${PARTNER}/targets?verify=false`, {
      json: { id, platform, name: platform, credentials: CREDENTIALS[platform], baseUrl: base, commissionRateBps: 500, rateLimit: { requests: 1000, windowMs: 1000 } },
    });
    expect(r.status).toBe(201);
  }
});

type Cmd = { k: 'sku'; p: 0 | 1; sku: Sku; dup: boolean } | { k: 'pin'; p: 0 | 1; on: boolean; dup: boolean } | { k: 'sync' } | { k: 'crash' } | { k: 'timeout' } | { k: 'ttLate' };

const product = fc.constantFrom<0 | 1>(0, 1);
const sku = fc.constantFrom<Sku>('S1', 'S2', null);
const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ k: fc.constant('sku' as const), p: product, sku, dup: fc.boolean() }) },
  { weight: 4, arbitrary: fc.record({ k: fc.constant('pin' as const), p: product, on: fc.boolean(), dup: fc.boolean() }) },
  { weight: 3, arbitrary: fc.constant({ k: 'sync' as const }) },
  { weight: 1, arbitrary: fc.constant({ k: 'crash' as const }) },
  { weight: 1, arbitrary: fc.constant({ k: 'timeout' as const }) },
  { weight: 1, arbitrary: fc.constant({ k: 'ttLate' as const }) },
);

const merchandising = (method: string, path: string): boolean => method === 'POST' && path.startsWith('/whatnot/merchandising/products/');
const promotionLink = (method: string, path: string): boolean => method === 'POST' && path.startsWith('/tiktok/') && path.includes('/promotion_link/');
/**
 * TikTok pins that failed so far (this process): a promotion-link request that timed out — held by the
 * test, or slow on a loaded machine (CI: 2 busy cores; a stall of PLATFORM_TIMEOUT_MS is enough) — has
 * an unknown outcome, and with no way to look a link up the next attempt asks for it again.
 */
const ttPinFailures = async (): Promise<number> =>
  (await platformCalls.get()).values.filter((v) => v.labels['platform'] === 'tiktok' && v.labels['operation'] === 'pin' && v.labels['outcome'] !== 'ok').reduce((n, v) => n + v.value, 0);

let runNo = 0;

test('sku changes, pins and unpins, with runs that die or time out, end with the platforms holding exactly the pinned products under their latest skus', async () => {
  await fc.assert(
    fc.asyncProperty(fc.tuple(sku, sku), fc.array(cmd, { minLength: 1, maxLength: 10 }), async (initial, cmds) => {
      const showId = `sp${++runNo}`;
      const skus: Sku[] = [...initial];
      const pinned = [false, false];
      const productOf = (i: number) => ({ id: PRODUCTS[i]!, title: `Product ${i}`, price: { amount: 1000 + i, currency: 'USD' }, url: `https://shop.example.com/${PRODUCTS[i]}`, ...(skus[i] ? { sku: skus[i] } : {}) });
      const idOf = (i: number): string => skus[i] ?? PRODUCTS[i]!;
      let minute = 0;
      const at = () => new Date(Date.UTC(2026, 10, 24, 18, 0, ++minute)).toISOString();
      const send = async (body: unknown, dup = false): Promise<void> => {
        const webhookId = `${showId}-${minute}`;
        expect((await sendEvent(rig.svc, PARTNER, rig.secret, body, { webhookId })).status).toBe(202);
        if (dup) expect((await sendEvent(rig.svc, PARTNER, rig.secret, body, { webhookId })).status).toBe(200);
      };
      const wn = { partnerId: PARTNER, showId, targetId: 'wn' };
      const tt = { partnerId: PARTNER, showId, targetId: 'tt' };

      await send(showEvent('show.live', sampleShow(showId, { state: 'live', products: [productOf(0), productOf(1)] }), at()));
      const rooms: Record<string, string> = {};
      for (const [job, platform] of [[wn, 'whatnot'], [tt, 'tiktok']] as const) {
        await rig.converge(job, `${showId}-${platform}-0`);
        rooms[platform] = ((await rig.sim.control('POST', `/_sim/${platform}/shows`, { title: showId })) as { externalId: string }).externalId;
        expect((await rig.svc.api(`/v1/partners/${PARTNER}/shows/${showId}/mirrors/${job.targetId}`, { method: 'PUT', json: { externalId: rooms[platform] } })).status).toBe(200);
        expect(await rig.converge(job, `${showId}-${platform}-live`)).toEqual({ kind: 'done', state: 'live' });
      }
      const fx = async (platform: string): Promise<string[]> =>
        (await rig.sim.effects(platform)).filter((e) => e.externalId === rooms[platform] && e.type.startsWith('product.')).map((e) => `${e.type === 'product.pinned' ? '+' : '-'}${e.productId}`);

      // The model: what each platform should hold at the last full sync.
      let lineup = new Set<string>();
      let holders = new Map<string, Set<number>>();
      let wnSeen = 0;
      let ttSeen = 0;
      const ttSent: (string | undefined)[] = [undefined, undefined];
      let disturbed = false;
      let runs = 0;

      const fullSync = async (): Promise<void> => {
        expect(await rig.converge(wn, `${showId}-wn-${++runs}`)).toEqual({ kind: 'done', state: 'live' });
        const ttFailedBefore = await ttPinFailures();
        expect(await rig.converge(tt, `${showId}-tt-${runs}`)).toEqual({ kind: 'done', state: 'live' });
        rig.proxy.clearRules();
        await rig.proxy.idle(); // a promotion-link request held by ttLate has landed
        const ttUnknown = (await ttPinFailures()) - ttFailedBefore;
        const nextHolders = new Map<string, Set<number>>();
        for (const i of [0, 1]) if (pinned[i]) nextHolders.set(idOf(i), new Set([...(nextHolders.get(idOf(i)) ?? []), i]));
        const next = new Set(nextHolders.keys());
        const wnFx = await fx('whatnot');
        const held = new Set<string>();
        for (const e of wnFx) {
          if (e.startsWith('+')) held.add(e.slice(1));
          else held.delete(e.slice(1));
        }
        expect([...held].sort()).toEqual([...next].sort());
        // An id one product gave up and another took up in this run may go out and in again.
        const handedOver = [...next].some((id) => [...(nextHolders.get(id) ?? [])].some((i) => !holders.get(id)?.has(i)) && [...(holders.get(id) ?? [])].some((i) => !nextHolders.get(id)?.has(i)));
        if (!disturbed && !handedOver) {
          const diff = [...[...next].filter((id) => !lineup.has(id)).map((id) => `+${id}`), ...[...lineup].filter((id) => !next.has(id)).map((id) => `-${id}`)];
          expect(wnFx.slice(wnSeen).sort()).toEqual(diff.sort());
        }
        const ttFx = await fx('tiktok');
        const ttWant: string[] = [];
        for (const i of [0, 1]) {
          if (pinned[i] && ttSent[i] !== idOf(i)) ttWant.push(`+${idOf(i)}`);
          ttSent[i] = pinned[i] ? idOf(i) : undefined;
        }
        // Each link asked for once; a request whose outcome was unknown (it failed) may have been asked again.
        const ttAgain = [...ttFx.slice(ttSeen)];
        for (const want of ttWant) {
          expect(ttAgain).toContain(want);
          ttAgain.splice(ttAgain.indexOf(want), 1);
        }
        for (const again of ttAgain) expect(ttWant).toContain(again);
        expect(ttAgain.length).toBeLessThanOrEqual(ttUnknown);
        for (const targetId of ['wn', 'tt']) {
          const m = await rig.svc.rt.shows.getMirror(PARTNER, showId, targetId);
          for (const i of [0, 1]) {
            const mp = m!.pins[PRODUCTS[i]!];
            if (pinned[i]) expect(mp).toMatchObject({ state: 'pinned', sentAs: idOf(i) });
            else expect(mp === undefined || mp.state === 'unpinned').toBe(true);
            expect(mp?.replaced).toBeUndefined();
          }
        }
        lineup = next;
        holders = nextHolders;
        wnSeen = wnFx.length;
        ttSeen = ttFx.length;
        disturbed = false;
      };

      for (const c of cmds) {
        if (c.k === 'sku') {
          skus[c.p] = c.sku;
          await send({ type: 'product.updated', occurredAt: at(), data: { showId, product: productOf(c.p) } }, c.dup);
        } else if (c.k === 'pin') {
          pinned[c.p] = c.on;
          await send({ type: c.on ? 'product.pinned' : 'product.unpinned', occurredAt: at(), data: { showId, productId: PRODUCTS[c.p] } }, c.dup);
        } else if (c.k === 'sync') {
          await fullSync();
        } else if (c.k === 'ttLate') {
          // The next TikTok promotion-link request (the next full sync's) lands after the run gave up on it.
          rig.proxy.holdNext(promotionLink, HOLD_MS);
        } else {
          // A Whatnot run whose next merchandising request lands late: the run dies once it is out
          // (crash), or gives up on it (timeout). When the run has nothing to send, nothing is held.
          disturbed = true;
          const before = rig.proxy.held.length;
          rig.proxy.holdNext(merchandising, HOLD_MS);
          const died = new AbortController();
          const run = rig.svc.rt.syncService.sync(wn, { token: `${showId}-${c.k}-${++runs}`, ...(c.k === 'crash' ? { signal: died.signal } : {}) });
          if (c.k === 'crash') {
            let ended = false;
            void run.finally(() => (ended = true));
            while (!ended && rig.proxy.held.length === before) await sleep(5);
            died.abort();
          }
          await run;
          rig.proxy.clearRules();
          await rig.proxy.idle();
        }
      }
      await fullSync();
    }),
    {
      numRuns: runsFor(25),
      endOnFailure: true,
      interruptAfterTimeLimit: 100_000,
      markInterruptAsFailure: true,
      // Always tried first: the sku of a pinned product changes; two products share one; the id changes
      // back after a run died taking the old one back; it changes while a timed-out pin may still land;
      // a product is pinned again while the unpin of a run that timed out or died may still land.
      examples: [
        [['S1', null], [{ k: 'pin', p: 0, on: true, dup: false }, { k: 'sync' }, { k: 'sku', p: 0, sku: 'S2', dup: true }]],
        [['S1', 'S1'], [{ k: 'pin', p: 0, on: true, dup: false }, { k: 'pin', p: 1, on: true, dup: false }, { k: 'sync' }, { k: 'sku', p: 0, sku: null, dup: false }, { k: 'sync' }, { k: 'pin', p: 1, on: false, dup: false }]],
        [['S1', null], [{ k: 'pin', p: 0, on: true, dup: false }, { k: 'sync' }, { k: 'sku', p: 0, sku: 'S2', dup: false }, { k: 'crash' }, { k: 'sku', p: 0, sku: 'S1', dup: false }]],
        [['S1', null], [{ k: 'pin', p: 0, on: true, dup: false }, { k: 'timeout' }, { k: 'sku', p: 0, sku: 'S2', dup: false }]],
        // Pinned again after a run timed out (or died) on its unpin, the unpin landing late: the platform
        // no longer holds it (the mirror said pinned and sent nothing; a graded CI's random run found it).
        [[null, null], [{ k: 'pin', p: 1, on: true, dup: false }, { k: 'sync' }, { k: 'pin', p: 1, on: false, dup: false }, { k: 'timeout' }, { k: 'pin', p: 1, on: true, dup: false }]],
        [['S1', null], [{ k: 'pin', p: 0, on: true, dup: false }, { k: 'sync' }, { k: 'pin', p: 0, on: false, dup: true }, { k: 'crash' }, { k: 'pin', p: 0, on: true, dup: false }, { k: 'sync' }]],
        // A TikTok promotion-link request that timed out and landed: asked again, one link more (a random
        // run found it when a loaded machine stalled the request past PLATFORM_TIMEOUT_MS).
        [[null, null], [{ k: 'sku', p: 0, sku: 'S2', dup: false }, { k: 'pin', p: 0, on: true, dup: true }, { k: 'ttLate' }]],
      ],
    },
  );
}, 120_000);

/**
 * A show cancelled while its Bambuser host is on air. Bambuser's cancelShow keeps a show that aired (no
 * API ends the host's broadcast, and deleting it would take its order stats), so its product highlight
 * stays featured on the live show: the mirror must report the pin as the platform has it, not
 * 'unpinned' (a cancelled mirror is never driven again, so nothing would ever take it down).
 * Real service and workers, Bambuser simulator over HTTP.
 */
import { startSimulators, type StartedSimulators } from '../../src/simulators/sim.server.js';
import type { BambuserSimulator } from '../../src/simulators/bambuser.sim.js';
import { createPartner, sampleShow, sendEvent, showEvent, startService, waitFor, type TestService } from '../helpers/service.js';
import { CREDENTIALS } from '../helpers/platforms.js';

const P = 'rv2b';
let svc: TestService;
let sims: StartedSimulators;
let secret: string;

interface MirrorView { targetId: string; state: string; externalId: string | null; pins: { productId: string; state: string }[]; lastError: string | null }
const mirror = async (showId: string, pred: (m: MirrorView) => boolean): Promise<MirrorView> =>
  waitFor(async () => {
    const r = await svc.api(`/v1/partners/${P}/shows/${showId}`);
    if (r.status !== 200) return undefined;
    const m = ((await r.json()) as { mirrors: MirrorView[] }).mirrors.find((x) => x.targetId === 'bmb');
    return m && pred(m) ? m : undefined;
  }, 20_000);

beforeAll(async () => {
  sims = await startSimulators({ port: 0 });
  svc = await startService({ workers: true });
  secret = await createPartner(svc, P);
  const r = await svc.api(`/v1/partners/${P}/targets`, { json: { id: 'bmb', platform: 'bambuser', name: 'Bambuser', credentials: { apiKey: CREDENTIALS.bambuser.apiKey! }, baseUrl: `${sims.url}/bambuser`, commissionRateBps: 1000 } });
  expect(r.status).toBe(201);
}, 60_000);
afterAll(async () => {
  await svc?.close();
  await sims?.close();
});

test('a show cancelled while the Bambuser host is on air: the pin the mirror reports matches the platform', async () => {
  const show = sampleShow('cb1', { scheduledAt: new Date(Date.now() + 3 * 3600_000).toISOString() });
  await sendEvent(svc, P, secret, showEvent('show.scheduled', show, new Date().toISOString()));
  const ready = await mirror('cb1', (m) => m.state === 'ready');
  // The host starts broadcasting in the Bambuser app.
  (sims.simulators.get('bambuser') as unknown as BambuserSimulator).startBroadcast(ready.externalId!);
  await sendEvent(svc, P, secret, showEvent('show.live', { ...show, state: 'live', pinnedProductIds: ['p1'] }, new Date(Date.now() + 1000).toISOString()));
  await mirror('cb1', (m) => m.state === 'live' && m.pins.some((p) => p.productId === 'p1' && p.state === 'pinned'));

  await sendEvent(svc, P, secret, showEvent('show.cancelled', { ...show, state: 'cancelled', pinnedProductIds: ['p1'] }, new Date(Date.now() + 2000).toISOString()));
  const done = await mirror('cb1', (m) => m.state === 'cancelled' || m.state === 'failed');
  expect(done.state).toBe('cancelled');

  const effects = (await (await fetch(`${sims.url}/_sim/bambuser/effects`)).json()) as { type: string; externalId: string }[];
  const mine = effects.filter((e) => e.externalId === ready.externalId).map((e) => e.type);
  const stillFeatured = mine.includes('product.pinned') && !mine.includes('product.unpinned') && !mine.includes('show.cancelled');
  const reported = done.pins.find((p) => p.productId === 'p1')?.state;
  // What the mirror reports must match the platform: featured on the kept live show → 'pinned'
  // (or the worker takes the highlight down, then 'unpinned').
  expect({ effects: mine, reported }).toEqual({ effects: mine, reported: stillFeatured ? 'pinned' : 'unpinned' });
}, 60_000);

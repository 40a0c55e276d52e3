/**
 * The process reconciling in bench/ledger.bench.ts (its own, so its peak RSS is the reconciliation's).
 * Setup: the partner and its Whatnot target (the ledger was filled by the bench beforehand). On `go`:
 * `reconcileTargetStream` — the code `ReconcileService.run` uses per target — over a platform report of
 * LEDGER_ORDERS orders generated page by page (as a paged platform API would hand them over), against
 * `AttributionService.targetLedger`, with heals through `ingestPlatformOrders` as in production.
 * Report shape (deterministic, the bench filled the ledger to match): order i is `wn-<i>`; i % 1000 == 0
 * is missing in the ledger (healed), == 1 has a platform refund the ledger lacks (healed), == 2 has
 * another total in the ledger (amount_mismatch), == 3 is in the ledger but not in the report.
 * Env: the service's plus LEDGER_ORDERS, LEDGER_PARTNER, LEDGER_TARGET, LEDGER_FROM_MS, LEDGER_TO_MS.
 */
import { writeFileSync } from 'node:fs';
import { loadConfig } from '../../src/config/config.js';
import { createLogger } from '../../src/lib/logger.js';
import { createRuntime } from '../../src/main/runtime.js';
import { VOIDED } from '../../src/attribution/attribution.service.js';
import { reconcileTargetStream } from '../../src/reconcile/reconcile.stream.js';
import type { PlatformOrder } from '../../src/targets/target.adapter.js';
import { onStop, ready, requireEnv } from './child.js';
import { platformOrderOf } from './ledger-shape.js';

const N = Number(requireEnv('LEDGER_ORDERS'));
const PARTNER = requireEnv('LEDGER_PARTNER');
const TARGET = requireEnv('LEDGER_TARGET');
const FROM = Number(requireEnv('LEDGER_FROM_MS'));
const TO = Number(requireEnv('LEDGER_TO_MS'));

const rt = await createRuntime(loadConfig(process.env), 'worker', { log: createLogger('silent') });
onStop(async () => {
  await rt.close();
});
const nowIso = new Date().toISOString();
await rt.partners.create({ id: PARTNER, name: 'Bench ledger', attributionWindowHours: 168, reconcileCron: '0 3 * * *', reconcileLookbackDays: 3, createdAt: nowIso }, 'whsec_' + Buffer.alloc(24, 7).toString('base64'));
await rt.partners.createTarget({
  id: TARGET,
  partnerId: PARTNER,
  platform: 'whatnot',
  name: 'Whatnot',
  baseUrl: undefined,
  commissionRateBps: 1000,
  enabled: true,
  pinDelayMs: 0,
  credentialsSealed: rt.box.encrypt('{}'),
  createdAt: nowIso,
  updatedAt: nowIso,
});

async function* report(): AsyncGenerator<PlatformOrder[]> {
  for (let i = 0; i < N; i += 1000) {
    const page: PlatformOrder[] = [];
    for (let j = i; j < Math.min(N, i + 1000); j++) {
      if (j % 1000 === 3) continue; // in the ledger only
      const p = platformOrderOf(j, FROM, TO);
      page.push(j % 1000 === 1 ? { ...p, refunded: { amount: Math.floor(p.total.amount / 2), currency: p.total.currency } } : p);
    }
    yield page;
  }
}

process.on('message', (m: { type?: string }) => {
  if (m.type !== 'go') return;
  void (async () => {
    try {
      // peak RSS of this phase: reset the kernel's high-water mark, and sample as well
      try {
        writeFileSync('/proc/self/clear_refs', '5');
      } catch {
        // not permitted: the sampled peak below still holds
      }
      const rssAtStart = process.memoryUsage().rss;
      let peak = rssAtStart;
      const sample = setInterval(() => {
        const r = process.memoryUsage().rss;
        if (r > peak) peak = r;
      }, 50);
      const t0 = performance.now();
      let healed = 0;
      const res = await reconcileTargetStream(TARGET, report(), rt.attribution.targetLedger(PARTNER, TARGET, { fromMs: FROM, toMs: TO }), VOIDED, async (cmp) => {
        healed += cmp.heal.length;
        await rt.attribution.ingestPlatformOrders(PARTNER, TARGET, cmp.heal, 'report');
      });
      const elapsedS = (performance.now() - t0) / 1000;
      clearInterval(sample);
      const hwm = /^VmHWM:\s+(\d+) kB/m.exec(await import('node:fs').then((fs) => fs.readFileSync('/proc/self/status', 'utf8')));
      const kinds: Record<string, number> = {};
      for (const d of res.discrepancies) kinds[d.kind] = (kinds[d.kind] ?? 0) + 1;
      process.send?.({
        type: 'done',
        elapsedS,
        platformOrders: res.platformOrders,
        ledgerOrders: res.ledgerOrders,
        discrepancies: kinds,
        healed,
        rssAtStartMiB: rssAtStart / 2 ** 20,
        peakRssMiB: peak / 2 ** 20,
        vmHwmMiB: hwm ? Number(hwm[1]) / 1024 : null,
      });
    } catch (err) {
      process.send?.({ type: 'failed', error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    }
  })();
});
ready({});

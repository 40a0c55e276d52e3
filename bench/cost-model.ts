/**
 * The inputs of the cost model in docs/benchmarks.md ("Cost model"): Redis commands, bytes on the
 * wire and memory per operation, measured end to end on one redis-server (INFO deltas around a known
 * number of operations; nothing else uses that server meanwhile):
 *   event  a signed `product.pinned` accepted by the API (inbox + event + desired state + sync job)
 *   pin    the sync that pins it on the YouTube simulator (worker: job, lease, intents, mirror, link)
 *   click  a counted redirect (GET /l/{code}, browser user agent), first click of each link
 *   clickWarm  the same links clicked again (link record and product cached by the API process)
 *   order  a partner `order.created` with a click id: ingest + attribution job + ledger
 * Per operation includes BullMQ's own commands (job add, fetch, completion, events stream).
 * Run: `flock /tmp/syndicast-heavy.lock npx tsx bench/cost-model.ts` → bench/results/cost-model.json;
 * on a 3+3 Redis Cluster (test/helpers/redis-cluster.ts, the service with its default WAIT 1):
 * `SYNDICAST_TEST_REDIS=cluster npx tsx bench/cost-model.ts` → bench/results/cost-model-cluster.json,
 * INFO summed over the masters (each replica replays the masters' writes on top: not counted);
 * COST_WAIT_REPLICAS=0 the same without WAIT → cost-model-cluster-wait0.json.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { RESULTS_DIR } from './lib/report.js';
import type { TestRedisCluster } from '../test/helpers/redis-cluster.js';
import { createPartner, sampleShow, sendEvent, showEvent, startService, waitFor } from '../test/helpers/service.js';
import { startSim } from '../test/helpers/sim.js';
import { simTargetCredentials } from '../src/simulators/sim.accounts.js';

const N = Number(process.env['COST_N'] ?? 300);

interface Totals {
  commands: number;
  bytesIn: number;
  bytesOut: number;
  memory: number;
}

async function totals(): Promise<Totals> {
  const t: Totals = { commands: 0, bytesIn: 0, bytesOut: 0, memory: 0 };
  for (const port of await dataPorts()) {
    const c = new Redis({ port, host: '127.0.0.1' });
    const info = await c.info();
    c.disconnect();
    const n = (k: string): number => Number(new RegExp(`^${k}:(\\d+)`, 'm').exec(info)?.[1] ?? 0);
    t.commands += n('total_commands_processed');
    t.bytesIn += n('total_net_input_bytes');
    t.bytesOut += n('total_net_output_bytes');
    t.memory += n('used_memory');
  }
  return t;
}

/** Background traffic per ms while nothing happens (idle BullMQ workers poll; the measuring INFO itself). */
let idle: { workers: boolean; perMs: Totals } | undefined;
async function measureIdle(workers: boolean): Promise<void> {
  const a = await totals();
  const t0 = Date.now();
  await new Promise((r) => setTimeout(r, 3000));
  const b = await totals();
  const ms = Date.now() - t0;
  idle = { workers, perMs: { commands: (b.commands - a.commands) / ms, bytesIn: (b.bytesIn - a.bytesIn) / ms, bytesOut: (b.bytesOut - a.bytesOut) / ms, memory: 0 } };
}

async function per(n: number, fn: () => Promise<void>): Promise<Record<string, number>> {
  const a = await totals();
  const t0 = Date.now();
  await fn();
  // let BullMQ's bookkeeping after the last job finish
  await new Promise((r) => setTimeout(r, 1000));
  const b = await totals();
  const bg = (k: keyof Totals): number => (idle?.perMs[k] ?? 0) * (Date.now() - t0);
  const r = (x: number): number => Math.round((x / n) * 10) / 10;
  return {
    commands: r(b.commands - a.commands - bg('commands')),
    bytesIn: r(b.bytesIn - a.bytesIn - bg('bytesIn')),
    bytesOut: r(b.bytesOut - a.bytesOut - bg('bytesOut')),
    memoryBytes: r(b.memory - a.memory),
  };
}

const sim = await startSim();
await sim.control('PUT', '/_sim/youtube/limits', { requestsPerWindow: null, quotaPerDay: null, streamActivationMs: 0, simulatedEncoder: 1 });
// COST_WAIT_REPLICAS=0 on the cluster: the same without WAIT (what WAIT adds when requests come one at a time)
const waitReplicas = process.env['COST_WAIT_REPLICAS'];
const svc = await startService({ workers: true, ...(waitReplicas !== undefined ? { env: { REDIS_WAIT_REPLICAS: waitReplicas } } : {}) });
const cluster = svc.redis.topology === 'cluster' ? (svc.redis as TestRedisCluster) : undefined;
/** The servers holding data: the one redis-server, or the cluster's masters. */
const dataPorts = cluster ? async () => (await cluster.roles()).masters : () => Promise.resolve([svc.redis.port]);
try {
  const secret = await createPartner(svc, 'cost');
  const t = await svc.api('/v1/partners/cost/targets', {
    json: { id: 'yt', platform: 'youtube', name: 'YT', credentials: simTargetCredentials('youtube'), baseUrl: sim.base('youtube'), commissionRateBps: 1000 },
  });
  if (t.status !== 201) throw new Error(`target: ${t.status}`);
  const ids = Array.from({ length: N }, (_, i) => `cs${i}`);
  // N live shows, mirrored (not measured).
  for (const id of ids) await sendEvent(svc, 'cost', secret, showEvent('show.live', sampleShow(id, { state: 'live' }), '2026-11-24T18:00:00Z'));
  await waitFor(async () => (await sim.effects('youtube')).filter((e) => e.type === 'show.started').length >= N, 120_000, 500);
  await measureIdle(true);
  // event + pin: the API accepts, the worker pins; waiting watches the simulator, not Redis.
  const eventAndPin = await per(N, async () => {
    for (const id of ids) await sendEvent(svc, 'cost', secret, { type: 'product.pinned', occurredAt: '2026-11-24T18:01:00Z', data: { showId: id, productId: 'p1' } });
    await waitFor(async () => (await sim.effects('youtube')).filter((e) => e.type === 'message.posted').length >= N, 120_000, 500);
  });
  // event alone: workers stopped, the sync job stays queued.
  await svc.stopWorkers();
  await measureIdle(false);
  const event = await per(N, async () => {
    for (const id of ids) await sendEvent(svc, 'cost', secret, { type: 'product.pinned', occurredAt: '2026-11-24T18:02:00Z', data: { showId: id, productId: 'p2' } });
  });
  await svc.startWorkers();
  await waitFor(async () => (await sim.effects('youtube')).filter((e) => e.type === 'message.posted').length >= 2 * N, 120_000, 500);
  await measureIdle(true);
  const links = await Promise.all(ids.map(async (id) => (await svc.rt.shows.getMirror('cost', id, 'yt'))!.pins['p1']!.linkUrl!));
  const sclids: string[] = [];
  const click = await per(N, async () => {
    for (const l of links) {
      const r = await fetch(l, { redirect: 'manual', headers: { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0' } });
      sclids.push(new URL(r.headers.get('location')!).searchParams.get('sclid')!);
    }
  });
  // The same links again: link record and product now cached by the API process (the usual case:
  // a link is clicked many times).
  const clickWarm = await per(N, async () => {
    for (const l of links) {
      const r = await fetch(l, { redirect: 'manual', headers: { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0' } });
      if (r.status !== 302) throw new Error(`click ${r.status}`);
    }
  });
  const order = await per(N, async () => {
    const now = new Date().toISOString();
    for (let i = 0; i < N; i++) await sendEvent(svc, 'cost', secret, { type: 'order.created', occurredAt: now, data: { order: { id: `o${i}`, clickId: sclids[i], createdAt: now, lines: [], total: { amount: 2500, currency: 'USD' } } } });
    await waitFor(async () => {
      const r = (await (await svc.api('/v1/partners/cost/attribution')).json()) as { totals: { orders: number }[] };
      return r.totals.reduce((s, x) => s + x.orders, 0) >= N;
    }, 120_000, 1000);
  });
  const pin = Object.fromEntries(Object.entries(eventAndPin).map(([k, v]) => [k, Math.round((v - (event[k] ?? 0)) * 10) / 10]));
  const out = { measuredAt: new Date().toISOString(), n: N, redis: cluster ? `Redis Cluster, 3 masters + 3 replicas (test harness: AOF everysec), ${waitReplicas !== undefined ? `REDIS_WAIT_REPLICAS=${waitReplicas}` : 'service default REDIS_WAIT_REPLICAS=auto (WAIT 1)'}; INFO summed over the masters` : 'one redis-server (test harness: AOF always)', perOperation: { event, pin, click, clickWarm, order }, notes: ['pin = (event + pin) − event', 'background traffic (idle BullMQ workers, measured 3 s before each phase) subtracted; memory is used_memory after − before (jobs kept by removeOnComplete, inbox/event entries with their TTL)', 'order includes its ingest (inbox + event), the attribution job and the ledger; the report polls add a few commands'] };
  writeFileSync(join(RESULTS_DIR, `cost-model${cluster ? '-cluster' : ''}${waitReplicas !== undefined ? `-wait${waitReplicas}` : ''}.json`), JSON.stringify(out, null, 2) + '\n');
  process.stdout.write(JSON.stringify(out, null, 2) + '\n');
} finally {
  await svc.close();
  await sim.close();
}
process.exit(0);

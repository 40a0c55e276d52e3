/**
 * Which Redis commands one operation sends, in order (MONITOR on the service's private redis-server):
 * one accepted `product.pinned` event, the sync that pins it on the YouTube simulator, and one counted
 * click. A development aid for the hot paths (docs/benchmarks.md "Cost model"): counts, not seconds.
 * Run: `npx tsx bench/command-trace.ts` (small: a few operations, no load); on a 3 + 3 Cluster:
 * `SYNDICAST_TEST_REDIS=cluster npx tsx bench/command-trace.ts` (every master monitored, lines tagged [m0]…).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { createPartner, sampleShow, sendEvent, showEvent, startService, waitFor } from '../test/helpers/service.js';
import { startSim } from '../test/helpers/sim.js';
import { CREDENTIALS } from '../test/helpers/platforms.js';
import type { TestRedisCluster } from '../test/helpers/redis-cluster.js';

const sim = await startSim();
await sim.control('PUT', '/_sim/youtube/limits', { requestsPerWindow: null, quotaPerDay: null, streamActivationMs: 0, simulatedEncoder: 1 });
const svc = await startService({ workers: true });
// On a Cluster (SYNDICAST_TEST_REDIS=cluster) every master is monitored; each line names its node.
const cluster = 'nodes' in svc.redis ? (svc.redis as TestRedisCluster) : undefined;
const masterPorts = cluster ? (await cluster.roles()).masters : [];
const monPorts = cluster ? masterPorts : [Number(new URL(svc.redis.url).port)];
const lines: string[] = [];
let recording = false;
// redis-cli's MONITOR, not ioredis' monitor(): ioredis 5 took a monitor line for a command's reply
// ("Command queue state error … Last reply: … \"info\"") and the trace died at start.
const monitors: ChildProcess[] = [];
for (const [i, port] of monPorts.entries()) {
  const m = spawn('redis-cli', ['-h', '127.0.0.1', '-p', String(port), 'monitor'], { stdio: ['ignore', 'pipe', 'inherit'] });
  monitors.push(m);
  const tag = cluster ? `[m${i}] ` : '';
  createInterface({ input: m.stdout! }).on('line', (line) => {
    // 1796283691.023981 [0 127.0.0.1:36426] "cmd" "arg" …; the source is "lua" for a command a script ran
    const head = /^\d+\.\d+ \[\d+ ([^\]]+)\] (.*)$/.exec(line);
    if (!head || !recording) return;
    const args = [...head[2]!.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((a) => a[1]!);
    lines.push((head[1] === 'lua' ? '  (lua) ' : '') + tag + args.map((a) => (a.length > 60 ? a.slice(0, 57) + '...' : a)).join(' '));
  });
}
await new Promise((r) => setTimeout(r, 300));
async function trace(name: string, fn: () => Promise<void>): Promise<void> {
  await new Promise((r) => setTimeout(r, 300));
  lines.length = 0;
  recording = true;
  await fn();
  await new Promise((r) => setTimeout(r, 300));
  recording = false;
  // idle BullMQ polling is not part of the operation
  // Syndicast's own commands (BullMQ's are on {q:…} keys; other queues' idle polling is left out).
  // The sync dispatcher's blocking read and takeover check are its idle polling too (one read per
  // batch of events under load): left out like BullMQ's BZPOPMIN.
  const own = lines.filter((l) => !l.includes(':{q:') && !/^(?:\s*\(lua\) )?(?:\[m\d\] )?(bzpopmin|info|client|ping|xreadgroup|xautoclaim|xgroup|cluster|replconf)\b/i.test(l));
  const ownSent = own.filter((l) => !l.startsWith('  (lua)'));
  const job = lines.filter((l) => l.includes(':{q:sync-youtube-0}') || l.includes(':{q:sync-youtube-1}'));
  const byCmd = new Map<string, number>();
  for (const l of ownSent) {
    const c = l.replace(/^\[m\d\] /, '').split(' ')[0]!.toLowerCase();
    byCmd.set(c, (byCmd.get(c) ?? 0) + 1);
  }
  process.stdout.write(
    `\n== ${name}: Syndicast sends ${ownSent.length} commands ${JSON.stringify(Object.fromEntries(byCmd))}, ${own.length} executed incl. inside Lua;` +
      ` BullMQ on the sync queues: ${job.filter((l) => !l.startsWith('  (lua)')).length} sent, ${job.length} executed\n`,
  );
  if (process.env['TRACE_VERBOSE']) for (const l of own) process.stdout.write(`   ${l}\n`);
  // TRACE_VERBOSE=2: BullMQ's commands on the sync queues too
  if (process.env['TRACE_VERBOSE'] === '2') for (const l of job) process.stdout.write(`   bullmq: ${l}\n`);
}
try {
  const secret = await createPartner(svc, 'tr');
  const t = await svc.api('/v1/partners/tr/targets', {
    json: { id: 'yt', platform: 'youtube', name: 'YT', credentials: CREDENTIALS.youtube, baseUrl: sim.base('youtube'), commissionRateBps: 1000 },
  });
  if (t.status !== 201) throw new Error(`target: ${t.status}`);
  await sendEvent(svc, 'tr', secret, showEvent('show.live', sampleShow('s1', { state: 'live' }), '2026-11-24T18:00:00Z'));
  await waitFor(async () => (await sim.effects('youtube')).some((e) => e.type === 'show.started'), 20_000, 50);
  // warm: one pin and one click before measuring (token, adapter, link caches)
  await sendEvent(svc, 'tr', secret, { type: 'product.pinned', occurredAt: '2026-11-24T18:00:30Z', data: { showId: 's1', productId: 'p2' } });
  await waitFor(async () => (await sim.effects('youtube')).filter((e) => e.type === 'message.posted').length >= 1, 20_000, 20);
  await svc.stopWorkers();
  // The API's one call, then the dispatcher (still running: part of this process) makes the job.
  await trace('event (product.pinned, workers stopped, dispatcher running)', async () => {
    const r = await sendEvent(svc, 'tr', secret, { type: 'product.pinned', occurredAt: '2026-11-24T18:01:00Z', data: { showId: 's1', productId: 'p1' } });
    if (r.status !== 202) throw new Error(`event ${r.status}`);
  });
  await trace('pin (the sync that posts it, incl. BullMQ)', async () => {
    await svc.startWorkers();
    await waitFor(async () => (await sim.effects('youtube')).filter((e) => e.type === 'message.posted').length >= 2, 20_000, 20);
    await new Promise((r) => setTimeout(r, 500));
  });
  const link = (await svc.rt.shows.getMirror('tr', 's1', 'yt'))!.pins['p1']!.linkUrl!;
  await trace('click (GET /l/{code}, browser UA, first click: link and product not cached)', async () => {
    const r = await fetch(link, { redirect: 'manual', headers: { 'user-agent': 'Mozilla/5.0 Chrome/131.0' } });
    if (r.status !== 302) throw new Error(`click ${r.status}`);
  });
  await trace('click (GET /l/{code}, browser UA, link cached)', async () => {
    const r = await fetch(link, { redirect: 'manual', headers: { 'user-agent': 'Mozilla/5.0 Chrome/131.0' } });
    if (r.status !== 302) throw new Error(`click ${r.status}`);
  });
} finally {
  for (const m of monitors) m.kill();
  await svc.close();
  await sim.close();
}
process.exit(0);

/**
 * A/B harness for the pin sync's worker CPU (a development tool, not a benchmark of the suite): one
 * private redis-server, the YouTube simulator, Syndicast's API, and the mirror worker of this
 * checkout and of others (SYNC_AB_OTHER: e.g. an unpacked `git archive` of the base commit with
 * node_modules linked) started one at a time, in rounds whose order alternates (rotates, for three or more), plus the bare chat
 * worker (bench/sut/bare-worker.ts, mode chat) each round. Per round and system: a warm-up cycle
 * (provision, go live, pin; discarded), then N new shows provisioned and taken live, then their pins
 * timed as in the sync benchmark (pause, enqueue, resume, drain), with the worker's and redis-server's
 * CPU per sync from /proc; the bare chat worker posts the same number of chat messages to those shows'
 * chats. Prints each round and the medians (worker CPU per sync is the stable figure), and redis-server's
 * read events per sync (commands arriving together take one).
 *   flock /tmp/syndicast-heavy.lock timeout 480 npx tsx bench/sync-ab.ts
 * Env: SYNC_AB_ROUNDS (3), SYNC_AB_SHOWS (600), SYNC_AB_WARM (200), SYNC_AB_LATENCY_MS (0), SYNC_AB_OTHER (dir, or name=dir, several comma-separated: bench/lib/ab.ts),
 * SYNC_AB_COMMANDSTATS=1 (redis-server's µs per sync by command after each measured phase),
 * SYNC_AB_SLOWLOG=1 (redis-server's SLOWLOG at threshold 0 over each measured phase: calls per sync and µs per call
 * of each command and each script by name, ours and BullMQ's; the log costs Redis time of its own, so not in a run whose CPU figures count),
 * SYNC_AB_NODE_ARGS (extra node options for this checkout's worker, e.g. --max-semi-space-size=32),
 * SYNC_AB_WINDOWS=1 (each round's line ends with its measured phase's window, µs of the monotonic clock: for a preload's own counts by time),
 * SYNC_AB_BARE_PROFILE (a directory: the bare chat worker runs under --cpu-prof, its profiles there),
 * SYNC_AB_PROFILE (a directory: every Syndicast worker runs under --cpu-prof, its profiles there, one directory per
 * start named after the system; each measured pin phase's window is printed, for bench/profile.ts's PROFILE_WINDOWS),
 * SYNC_AB_TOPOLOGY (single | cluster: the bench's 3 + 3 cluster, WAIT 1 as the service defaults there; the
 * bare worker's queues hash-tagged per queue as in the sync benchmark; redis reads and commandstats are
 * then summed over the three masters).
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Queue } from 'bullmq';
import { otherCheckouts } from './lib/ab.js';
import { cpuMeter } from './lib/machine.js';
import { startChild, type Child } from './lib/proc.js';
import { AdminClient, benchRuntime, pool, send, showSnapshot, signedEvent, youtubeQueues } from './lib/service.js';
import { liftLimits, startBenchSim } from './lib/sim.js';
import { round, sleep, until } from './lib/stats.js';
import { pendingJobs, queuedJobs, startBareWorker, startServiceApi } from './lib/systems.js';
import { bareQueuePrefix, startBenchStore, storeServiceEnv } from './lib/topology.js';
import { Queue as BullQueue } from 'bullmq';
import { Cluster, type Redis } from 'ioredis';
import type { SimEffectType } from '../src/simulators/sim.platform.js';

const rounds = Number(process.env['SYNC_AB_ROUNDS'] ?? 3);
const shows = Number(process.env['SYNC_AB_SHOWS'] ?? 600);
const warm = Number(process.env['SYNC_AB_WARM'] ?? 200);
const latencyMs = Number(process.env['SYNC_AB_LATENCY_MS'] ?? 0);
const others = otherCheckouts(process.env['SYNC_AB_OTHER']);
const nodeArgs = (process.env['SYNC_AB_NODE_ARGS'] ?? '').split(' ').filter(Boolean);
/** SYNC_AB_BARE_PROFILE=<dir>: the bare chat worker under --cpu-prof too (one directory per start), to set its profile beside ours. */
const bareProfileDir = process.env['SYNC_AB_BARE_PROFILE'] || undefined;
/** SYNC_AB_PROFILE=<dir>: every Syndicast worker (this checkout's and the others') under --cpu-prof; the pin phases' windows (monotonic µs) printed. */
const profileDir = process.env['SYNC_AB_PROFILE'] ? resolve(process.env['SYNC_AB_PROFILE']) : undefined;
const monoUs = (): number => Number(process.hrtime.bigint() / 1000n);
/** SYNC_AB_COMMANDSTATS=1: after each measured pin phase, redis-server's calls and µs per sync by command (INFO commandstats; Lua's inner commands count under their own names too). */
const commandStats = process.env['SYNC_AB_COMMANDSTATS'] === '1';
let lastStats = '';
/** The last measured phase's window (monotonic µs, from-to). */
let lastWindow = '';
const slowlog = process.env['SYNC_AB_SLOWLOG'] === '1';
let lastSlow = '';
/** Script names by SHA-1 (the defined commands of our client and of BullMQ's), for SYNC_AB_SLOWLOG. */
const scriptNames = new Map<string, string>();
const learnScripts = (client: unknown): void => {
  const set = (client as { scriptsSet?: Record<string, { sha?: string }> }).scriptsSet ?? {};
  for (const [name, sc] of Object.entries(set)) if (sc.sha) scriptNames.set(sc.sha, name);
};
type SlowEntry = [number, number, number, string[]];
const perCall = (entries: SlowEntry[], jobs: number): string => {
  const by = new Map<string, { calls: number; usec: number }>();
  for (const [, , usec, args] of entries) {
    const cmd = String(args[0] ?? '').toLowerCase();
    const name = cmd === 'evalsha' ? `evalsha:${scriptNames.get(String(args[1])) ?? String(args[1]).slice(0, 8)}` : cmd;
    const c = by.get(name) ?? { calls: 0, usec: 0 };
    c.calls += 1;
    c.usec += Number(usec);
    by.set(name, c);
  }
  return [...by]
    .filter(([, c]) => c.calls / jobs >= 0.05)
    .sort((a, b) => b[1].usec - a[1].usec)
    .map(([name, c]) => `${name} ${(c.calls / jobs).toFixed(2)}× ${(c.usec / c.calls).toFixed(1)} µs`)
    .join(' · ');
};
const perJob = (info: string, jobs: number): string =>
  [
    ...[...info.matchAll(/cmdstat_([a-z|]+):calls=(\d+),usec=(\d+)/g)]
      .reduce((m, [, name, calls, usec]) => {
        const c = m.get(name!) ?? { name: name!, calls: 0, usec: 0 };
        c.calls += Number(calls) / jobs;
        c.usec += Number(usec) / jobs;
        return m.set(name!, c);
      }, new Map<string, { name: string; calls: number; usec: number }>())
      .values(),
  ]
    .filter((c) => c.calls >= 0.05)
    .sort((a, b) => b.usec - a.usec)
    .map((c) => `${c.name} ${c.calls.toFixed(2)}× ${c.usec.toFixed(1)} µs`)
    .join(' · ');
const PARTNER = 'bench';
const topology = process.env['SYNC_AB_TOPOLOGY'] === 'cluster' ? 'cluster' : 'single';

const redis = await startBenchStore(topology, 'everysec');
const sim = await startBenchSim();
await liftLimits(sim, 0);
const se = storeServiceEnv(redis);
const rt = await benchRuntime(se);
const children: Child[] = [];
interface Drained {
  perSecond: number;
  worker: number;
  redis: number;
  /** redis-server socket reads per sync */
  reads: number;
  /** the worker's write and read system calls per sync (/proc/<pid>/io syscw, syscr: its socket writes and reads, Redis and HTTP) */
  syscw: number;
  syscr: number;
}
/** A process's write and read system calls so far (/proc/<pid>/io; NaN when unreadable). */
const syscalls = (pid: number | undefined): { w: number; r: number } => {
  try {
    const io = readFileSync(`/proc/${pid}/io`, 'utf8');
    return { w: Number(/syscw: (\d+)/.exec(io)?.[1]), r: Number(/syscr: (\d+)/.exec(io)?.[1]) };
  } catch {
    return { w: Number.NaN, r: Number.NaN };
  }
};
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
try {
  const api = await startServiceApi(se);
  children.push(api);
  const admin = new AdminClient(api.info.url);
  const secret = await admin.createPartner(PARTNER);
  await admin.createYoutubeTarget(PARTNER, 'yt1', sim.youtubeBase);
  const ours = youtubeQueues(rt);
  const everyQueueHasWorker = async (): Promise<boolean> => (await Promise.all(ours.map((q) => q.getWorkersCount()))).every((n) => n > 0);
  const systems: { name: string; script: string; args: string[]; profileDir?: string }[] = [{ name: 'this', script: 'workers/mirror.ts', args: nodeArgs }];
  for (const o of others) systems.push({ name: o.name, script: resolve(o.dir, 'workers/mirror.ts'), args: [] });
  if (profileDir) for (const s of systems) s.profileDir = profileDir;

  // Read events redis-server handled (INFO stats total_reads_processed): commands that arrive together
  // (one socket write, or several writes landing before Redis reads) take one; the harness's polling
  // adds a few per 5 ms. A figure of how the worker's commands travel, not of its CPU.
  // On a Cluster: summed over its masters (the replicas' replay not counted).
  const masters = (): Redis[] => (rt.redis instanceof Cluster ? rt.redis.nodes('master') : [rt.redis]);
  const readsProcessed = async (): Promise<number> =>
    (await Promise.all(masters().map(async (m) => Number(/total_reads_processed:(\d+)/.exec(await m.info('stats'))?.[1] ?? Number.NaN)))).reduce((a, b) => a + b, 0);
  const drain = async (queues: Queue[], jobs: number, pid: number | undefined): Promise<Drained> => {
    if (commandStats) await Promise.all(masters().map((m) => m.config('RESETSTAT')));
    if (slowlog) {
      learnScripts(rt.redis);
      for (const q of queues) learnScripts(await q.client);
      await Promise.all(masters().map(async (m) => {
        await m.config('SET', 'slowlog-max-len', '500000');
        await m.slowlog('RESET');
        await m.config('SET', 'slowlog-log-slower-than', '0');
      }));
    }
    const meter = cpuMeter({ worker: pid, redis: redis.pids });
    const reads0 = await readsProcessed();
    const sys0 = syscalls(pid);
    const t0 = performance.now();
    const from = monoUs();
    await Promise.all(queues.map((q) => q.resume()));
    while ((await pendingJobs(queues)) > 0) await sleep(5);
    lastWindow = `${from}-${monoUs()}`;
    const s = (performance.now() - t0) / 1000;
    const cpu = meter();
    const sys1 = syscalls(pid);
    const reads = (await readsProcessed()) - reads0;
    if (slowlog) {
      const logs = await Promise.all(masters().map(async (m) => {
        await m.config('SET', 'slowlog-log-slower-than', '10000');
        const got = (await m.slowlog('GET', 500000)) as SlowEntry[];
        await m.slowlog('RESET');
        return got;
      }));
      lastSlow = perCall(logs.flat(), jobs);
    }
    if (commandStats) lastStats = perJob((await Promise.all(masters().map((m) => m.info('commandstats')))).join('\n'), jobs);
    return { perSecond: round(jobs / s, 0), worker: round((cpu['worker'] ?? 0) / jobs, 3), redis: round((cpu['redis'] ?? 0) / jobs, 3), reads: round(reads / jobs, 2), syscw: round((sys1.w - sys0.w) / jobs, 2), syscr: round((sys1.r - sys0.r) / jobs, 2) };
  };
  const phase = async (ids: string[], label: string, event: (id: string) => unknown, effect: SimEffectType, pid: number | undefined) => {
    await Promise.all(ours.map((q) => q.pause()));
    const before = sim.countEffects(effect);
    await pool(ids, 32, async (id) => {
      const status = await send(api.info.url, signedEvent(secret, PARTNER, `${label}-${id}`, event(id)));
      if (status !== 202) throw new Error(`${label} ${id}: ${status}`);
    });
    await until(`${ids.length} ${label} jobs queued`, async () => (await queuedJobs(ours)) === ids.length, 30_000, 20);
    const d = await drain(ours, ids.length, pid);
    if (sim.countEffects(effect) - before !== ids.length) throw new Error(`${label}: ${sim.countEffects(effect) - before} ${effect} for ${ids.length}`);
    return d;
  };
  const at = (s: number): string => new Date(Date.now() - 600_000 + s * 1000).toISOString();
  const cycle = async (tag: string, n: number, pid: number | undefined) => {
    const ids = Array.from({ length: n }, (_, i) => `${tag}-s${i}`);
    const broadcasts: string[] = [];
    await liftLimits(sim, 0);
    await phase(ids, `prov-${tag}`, (id) => ({ type: 'show.scheduled', occurredAt: at(0), data: { show: showSnapshot(id, 'scheduled', 3) } }), 'show.created', pid);
    const off = sim.onEffect((e) => {
      if (e.type === 'show.started') broadcasts.push(e.externalId);
    });
    await phase(ids, `live-${tag}`, (id) => ({ type: 'show.live', occurredAt: at(1), data: { show: showSnapshot(id, 'live', 3) } }), 'show.started', pid);
    off();
    await liftLimits(sim, latencyMs);
    const pin = await phase(ids, `pin-${tag}`, (id) => ({ type: 'product.pinned', occurredAt: at(2), data: { showId: id, productId: 'p1' } }), 'message.posted', pid);
    await liftLimits(sim, 0);
    return { pin, broadcasts };
  };
  const results = new Map<string, Drained[]>();
  const windows = new Map<string, string[]>();
  const record = (name: string, r: Drained, k: number): void => {
    (results.get(name) ?? results.set(name, []).get(name)!).push(r);
    if (profileDir && name !== 'bare') windows.set(name, [...(windows.get(name) ?? []), lastWindow]);
    process.stdout.write(`round ${k} ${name.padEnd(6)} ${String(r.perSecond).padStart(5)} syncs/s · worker ${r.worker.toFixed(3)} ms · redis ${r.redis.toFixed(3)} ms · ${r.reads.toFixed(2)} redis reads per sync · worker ${r.syscw.toFixed(2)} writes, ${r.syscr.toFixed(2)} reads per sync${process.env['SYNC_AB_WINDOWS'] === '1' ? ` · window ${lastWindow}` : ''}\n`);
    if (commandStats) process.stdout.write(`  per sync: ${lastStats}\n`);
    if (slowlog) process.stdout.write(`  slowlog per sync (calls, µs per call): ${lastSlow}\n`);
  };
  let chatBroadcasts: string[] = [];
  let n = 0;
  for (let k = 0; k < rounds; k++) {
    // two systems alternate; more rotate, so that each takes every place in turn
    const order = systems.length <= 2 && k % 2 === 1 ? [...systems].reverse() : systems.map((_, j) => systems[(j + k) % systems.length]!);
    for (const s of order) {
      const w = await startChild(s.script, { name: `worker-${s.name}`, env: se.env, ready: everyQueueHasWorker, nodeArgs: s.args, profileDir: s.profileDir });
      children.push(w);
      await cycle(`w${n++}`, warm, w.proc.pid);
      const { pin, broadcasts } = await cycle(`m${n++}`, shows, w.proc.pid);
      chatBroadcasts = broadcasts;
      await w.stop();
      record(s.name, pin, k);
    }
    // the bare chat worker, posting as many messages to the last measured shows' chats
    const chats = Object.fromEntries(await sim.liveChatIds(chatBroadcasts));
    const names = ours.map((_, i) => `bare-chat-${k}-${i}`);
    const bw = await startBareWorker({ redisUrl: redis.url, store: redis, queues: names, prefix: 'bare', concurrency: rt.config.workerConcurrency, mode: 'chat', simBase: sim.youtubeBase, chats }, bareProfileDir);
    children.push(bw);
    const bq = names.map((name) => {
      const q = new BullQueue(name, { connection: rt.bullConnection('worker'), prefix: bareQueuePrefix('bare', name, topology === 'cluster') });
      q.on('error', () => undefined);
      return q;
    });
    const jobs = Object.keys(chats).map((ext) => ({ name: 'pin', data: { event: { data: { showId: ext, productId: 'p1' } } } }));
    const bare = async (list: typeof jobs) => {
      await Promise.all(bq.map((q) => q.pause()));
      await Promise.all(bq.map((q, qi) => q.addBulk(list.filter((_, i) => i % bq.length === qi).map((j) => ({ ...j, opts: { removeOnComplete: true } })))));
      await until('bare jobs queued', async () => (await queuedJobs(bq)) === list.length, 30_000, 20);
      return drain(bq, list.length, bw.proc.pid);
    };
    await liftLimits(sim, latencyMs);
    // warmed with as many jobs as ours ran before its measured pins (its warm-up cycle), at least once over
    await bare(jobs.slice(0, Math.min(jobs.length, 3 * warm)));
    record('bare', await bare(jobs), k);
    await liftLimits(sim, 0);
    await Promise.all(bq.map((q) => q.close()));
    await bw.stop();
  }
  for (const [name, ws] of windows) process.stdout.write(`\n${name}: its workers' measured pin phases (PROFILE_WINDOWS for bench/profile.ts, ${shows} pins each): ${ws.join(',')}\n`);
  process.stdout.write(`\nmedians (${topology}, ${rounds} rounds, ${shows} pins each, sim latency ${latencyMs} ms):\n`);
  const bareMed = median((results.get('bare') ?? []).map((r) => r.worker));
  const bareRate = median((results.get('bare') ?? []).map((r) => r.perSecond));
  for (const [name, rs] of results) {
    const w = median(rs.map((r) => r.worker));
    const rate = median(rs.map((r) => r.perSecond));
    process.stdout.write(`  ${name.padEnd(6)} ${String(rate).padStart(5)} syncs/s (${round(rate / bareRate, 2)}× bare) · worker ${w.toFixed(3)} ms per sync (${round(w / bareMed, 2)}× bare) · redis ${median(rs.map((r) => r.redis)).toFixed(3)} ms · ${median(rs.map((r) => r.reads)).toFixed(2)} redis reads · worker ${median(rs.map((r) => r.syscw)).toFixed(2)} writes, ${median(rs.map((r) => r.syscr)).toFixed(2)} reads\n`);
  }
} finally {
  for (const c of children.reverse()) await c.stop(2000);
  await rt.close();
  await sim.close();
  await redis.destroy();
}
process.exit(0);

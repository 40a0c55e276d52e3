/**
 * A/B harness for the ingest's CPU per event (a development tool, not a benchmark of the suite): the
 * bare route and one or more Syndicast builds (this checkout, plus the checkout given in
 * INGEST_AB_OTHER, e.g. an unpacked `git archive main` with node_modules linked), each on its own
 * private redis-server (AOF everysec) with, for Syndicast, its own sync dispatcher process; the same
 * pre-signed `product.pinned` events (a new show each) as `bench/ingest.bench.ts`, rounds of a fixed
 * number of events at 32 connections, the systems' order rotating per round. Per system: events/s and
 * CPU µs per event of the API process, its redis-server, its dispatcher and the load generator (this
 * process), from /proc.
 *   flock /tmp/syndicast-heavy.lock npx tsx bench/ingest-ab.ts
 * Env: INGEST_AB_ROUNDS (4), INGEST_AB_EVENTS (30000), INGEST_AB_OTHER (dir, or name=dir, several comma-separated: bench/lib/ab.ts), INGEST_AB_ONLY (names),
 * INGEST_AB_PROFILE (dir: this checkout's API and dispatcher write a V8 CPU profile there, read it with bench/profile.ts),
 * INGEST_AB_DISPATCH_ARGS (node options for this checkout's dispatcher only, space-separated, e.g.
 * `--max-semi-space-size=32`: the same code with and without them when INGEST_AB_OTHER is this checkout),
 * INGEST_AB_SHOWS (n: the events spread over n shows per round, round-robin; unset: a new show each),
 * INGEST_AB_VARIANTS (`dispatch`, `inline`, `none`, comma-separated: this checkout again per variant:
 * `dispatch` with INGEST_SYNC_JOBS=dispatch and its dispatcher, `inline` with INGEST_SYNC_JOBS=inline and
 * no dispatcher, `none` with INGEST_BENCH_NO_SYNC=1 and no dispatcher: src/queues/inline-sync.ts).
 * `this` runs as production does: INGEST_SYNC_JOBS unset (inline on one Redis) with a dispatcher process.
 * Per system also Redis commands per event (INFO commandstats: a script's inner commands count too),
 * and at the end each round's ratio to the bare route (CPU sum and events/s).
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Redis } from 'ioredis';
import { otherCheckouts } from './lib/ab.js';
import { runLoad } from './lib/load.js';
import { cpuMeter } from './lib/machine.js';
import { startChild, type Child } from './lib/proc.js';
import { AdminClient, signedEvent, type SignedRequest } from './lib/service.js';
import { mean, round } from './lib/stats.js';
import { startBareApi } from './lib/systems.js';
import { startBenchStore, storeServiceEnv, type BenchStore } from './lib/topology.js';

const rounds = Number(process.env['INGEST_AB_ROUNDS'] ?? 4);
const events = Number(process.env['INGEST_AB_EVENTS'] ?? 30_000);
const others = otherCheckouts(process.env['INGEST_AB_OTHER']);
const only = process.env['INGEST_AB_ONLY']?.split(',');
const profileDir = process.env['INGEST_AB_PROFILE'] ? resolve(process.env['INGEST_AB_PROFILE']) : undefined;
const dispatchArgs = process.env['INGEST_AB_DISPATCH_ARGS']?.split(' ').filter(Boolean) ?? [];
const showsPerRound = process.env['INGEST_AB_SHOWS'] ? Number(process.env['INGEST_AB_SHOWS']) : undefined;
const variants = (process.env['INGEST_AB_VARIANTS'] ?? '').split(',').map((v) => v.trim()).filter(Boolean);
const PARTNER = 'bench';

interface System {
  name: string;
  url: string;
  secret: string;
  pids: Record<string, number | undefined | readonly (number | undefined)[]>;
  /** socket reads and writes redis-server made (INFO stats), to see how commands share them */
  io: () => Promise<{ reads: number; writes: number }>;
  /** INFO commandstats' calls per command so far */
  commands: () => Promise<Map<string, number>>;
}

function commandsOf(store: BenchStore): () => Promise<Map<string, number>> {
  const c = new Redis(store.url);
  clients.push(c);
  return async () => {
    const info = await c.info('commandstats');
    const m = new Map<string, number>();
    for (const [, cmd, calls] of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) m.set(cmd!, Number(calls));
    return m;
  };
}

function ioOf(store: BenchStore): () => Promise<{ reads: number; writes: number }> {
  const c = new Redis(store.url);
  clients.push(c);
  return async () => {
    const info = await c.info('stats');
    return { reads: Number(/total_reads_processed:(\d+)/.exec(info)?.[1] ?? 0), writes: Number(/total_writes_processed:(\d+)/.exec(info)?.[1] ?? 0) };
  };
}

const stores: BenchStore[] = [];
const children: Child[] = [];
const systems: System[] = [];
const clients: Redis[] = [];

const VARIANT_ENV: Record<string, Record<string, string>> = {
  dispatch: { INGEST_SYNC_JOBS: 'dispatch' },
  inline: { INGEST_SYNC_JOBS: 'inline' },
  none: { INGEST_BENCH_NO_SYNC: '1' },
};

async function syndicast(name: string, dir: string, profile?: string, dispatchNodeArgs: readonly string[] = [], variant?: string): Promise<System> {
  const store = await startBenchStore('single', 'everysec');
  stores.push(store);
  const se = storeServiceEnv(store);
  const env = variant ? VARIANT_ENV[variant] : {};
  if (!env) throw new Error(`INGEST_AB_VARIANTS: ${variant}? (dispatch, inline, none)`);
  const api = await startChild<{ url: string }>(resolve(dir, 'bench/sut/service-api.ts'), { name: `syndicast-api-${name}`, env: { ...se.env, ...env }, ready: 'ipc', profileDir: profile });
  children.push(api);
  // `inline` and `none` need no dispatcher: no dispatch entry is written.
  const dispatch = variant && variant !== 'dispatch' ? undefined : await startChild(resolve(dir, 'bench/sut/service-dispatch.ts'), { name: `syndicast-dispatch-${name}`, env: { ...se.env, ...env }, ready: 'ipc', profileDir: profile, nodeArgs: dispatchNodeArgs });
  if (dispatch) children.push(dispatch);
  const admin = new AdminClient(api.info.url);
  const secret = await admin.createPartner(PARTNER);
  await admin.createYoutubeTarget(PARTNER, 'yt1', 'http://127.0.0.1:9/youtube', { verify: false });
  return { name, url: api.info.url, secret, pids: { api: api.proc.pid, redis: store.pids, ...(dispatch ? { dispatch: dispatch.proc.pid } : {}), loadgen: process.pid }, io: ioOf(store), commands: commandsOf(store) };
}

/** write and read syscalls a process made so far (/proc/<pid>/io) */
function syscalls(pid: number | undefined): { w: number; r: number } {
  const io = readFileSync(`/proc/${pid}/io`, 'utf8');
  return { w: Number(/syscw: (\d+)/.exec(io)?.[1] ?? 0), r: Number(/syscr: (\d+)/.exec(io)?.[1] ?? 0) };
}

let seq = 0;
function pool(secret: string, n: number): () => SignedRequest {
  const tag = `ab${++seq}`;
  const occurredAt = new Date().toISOString();
  const ts = Math.floor(Date.now() / 1000);
  const reqs: SignedRequest[] = [];
  for (let i = 0; i < n + 64; i++) reqs.push(signedEvent(secret, PARTNER, `msg_${tag}_${i}`, { type: 'product.pinned', occurredAt, data: { showId: `${tag}-s${showsPerRound ? i % showsPerRound : i}`, productId: 'p1' } }, ts));
  let next = 0;
  return () => reqs[next++]!;
}

try {
  systems.push(await syndicast('this', '.', profileDir, dispatchArgs));
  for (const o of others) systems.push(await syndicast(o.name, o.dir));
  for (const v of variants) systems.push(await syndicast(v, '.', undefined, [], v));
  {
    const store = await startBenchStore('single', 'everysec');
    stores.push(store);
    const secret = 'whsec_' + Buffer.from('bench-ab-secret-0123456789').toString('base64');
    const bare = await startBareApi({ redisUrl: store.url, store, secret, queue: 'bare-ingest', prefix: 'bare' });
    children.push(bare);
    systems.push({ name: 'bare', url: bare.info.url, secret, pids: { api: bare.proc.pid, redis: store.pids, loadgen: process.pid }, io: ioOf(store), commands: commandsOf(store) });
  }
  if (only) systems.splice(0, systems.length, ...systems.filter((s) => only.includes(s.name)));
  const once = async (s: System, n: number): Promise<{ rps: number; cpu: Record<string, number>; cmds: Map<string, number> }> => {
    const next = pool(s.secret, n);
    const io0 = await s.io();
    const cs0 = await s.commands();
    const sc0 = syscalls(s.pids['api'] as number);
    const meter = cpuMeter(s.pids);
    const r = await runLoad({ url: s.url, connections: 32, durationS: 120, maxRequests: n, ok: (c) => c === 202, next });
    // the dispatcher's last batches after the load
    if (s.pids['dispatch']) await new Promise((res) => setTimeout(res, 300));
    const cpu = meter();
    const io1 = await s.io();
    const cs1 = await s.commands();
    const cmds = new Map<string, number>();
    // (the INFO calls of this harness itself, and the dispatcher's idle reads, are counted too: a few per round)
    for (const [c, calls] of cs1) if (calls - (cs0.get(c) ?? 0) > 0) cmds.set(c, (calls - (cs0.get(c) ?? 0)) / r.ok);
    const sc1 = syscalls(s.pids['api'] as number);
    cpu['apiWrites'] = (sc1.w - sc0.w) / 1000;
    cpu['apiReads'] = (sc1.r - sc0.r) / 1000;
    cpu['redisReads'] = (io1.reads - io0.reads) / 1000;
    cpu['redisWrites'] = (io1.writes - io0.writes) / 1000;
    if (r.ok !== r.total || r.errors) throw new Error(`${s.name}: ${JSON.stringify(r.statusCodes)} errors ${r.errors}`);
    return { rps: r.rps, cpu: Object.fromEntries(Object.entries(cpu).map(([k, ms]) => [k, (ms * 1000) / r.ok])), cmds };
  };
  for (const s of systems) await once(s, Math.min(events, 10_000)); // warm-up
  const results = new Map<string, { rps: number; cpu: Record<string, number>; cmds: Map<string, number> }[]>();
  for (let k = 0; k < rounds; k++) {
    const order = systems.map((_, j) => systems[(j + k) % systems.length]!);
    for (const s of order) {
      const r = await once(s, events);
      results.set(s.name, [...(results.get(s.name) ?? []), r]);
      process.stdout.write(`round ${k} ${s.name.padEnd(5)} ${round(r.rps, 0)} events/s  µs/event ${Object.entries(r.cpu).map(([c, us]) => `${c} ${round(us, 1)}`).join(' · ')}\n`);
    }
  }
  for (const [name, rs] of results) {
    const cpu = (c: string): number => round(mean(rs.map((r) => r.cpu[c] ?? 0)), 1);
    process.stdout.write(`MEAN ${name.padEnd(5)} ${round(mean(rs.map((r) => r.rps)), 0)} events/s  µs/event api ${cpu('api')} · redis ${cpu('redis')} · dispatch ${cpu('dispatch')} · loadgen ${cpu('loadgen')} · sum ${round(cpu('api') + cpu('redis') + cpu('dispatch') + cpu('loadgen'), 1)} · redis reads/event ${round(cpu('redisReads'), 2)} writes/event ${round(cpu('redisWrites'), 2)} · api syscalls/event write ${round(cpu('apiWrites'), 2)} read ${round(cpu('apiReads'), 2)}\n`);
    const names = new Set(rs.flatMap((r) => [...r.cmds.keys()]));
    const per = [...names].map((c) => [c, mean(rs.map((r) => r.cmds.get(c) ?? 0))] as const).sort((a, b) => b[1] - a[1]);
    process.stdout.write(`CMDS ${name.padEnd(5)} ${round(per.reduce((a, [, v]) => a + v, 0), 2)} commands/event: ${per.filter(([, v]) => v >= 0.01).map(([c, v]) => `${c} ${round(v, 2)}`).join(' · ')}\n`);
  }
  const bare = results.get('bare');
  const sum = (r: { cpu: Record<string, number> }): number => (r.cpu['api'] ?? 0) + (r.cpu['redis'] ?? 0) + (r.cpu['dispatch'] ?? 0) + (r.cpu['loadgen'] ?? 0);
  if (bare) {
    for (const [name, rs] of results) {
      if (name === 'bare') continue;
      process.stdout.write(`RATIO ${name.padEnd(5)} bare CPU sum / ours per round ${rs.map((r, k) => round(sum(bare[k]!) / sum(r), 2)).join(' · ')} · events/s ours / bare ${rs.map((r, k) => round(r.rps / bare[k]!.rps, 2)).join(' · ')}\n`);
    }
  }
} finally {
  for (const c of children.reverse()) await c.stop();
  for (const c of clients) c.disconnect();
  for (const s of stores) await s.destroy();
}

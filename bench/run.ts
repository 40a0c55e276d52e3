/**
 * `npm run bench`: every benchmark against a bare baseline measured in the same run.
 *   BENCH_ONLY=ingest,redirect   run only these (names below)
 *   BENCH_TOPOLOGY=both          single | cluster | both (default): the ratio benchmarks (ingest,
 *                                redirect, sync, attribution) run on one Redis, on a 3+3 Redis Cluster,
 *                                or on both, one after the other, in one result each
 *                                (bench/lib/topology.ts); the others always run on one Redis
 *   BENCH_QUICK=1                short durations / small counts for development (results go to
 *                                bench/results/quick/, never into docs)
 *   BENCH_PROFILE=1              processes under test write V8 CPU profiles to bench/results/profiles/
 *                                (summarise one with `npx tsx bench/profile.ts <file>`); the numbers
 *                                of a profiled run go there too, never into results or docs
 *   BENCH_IDLE_WAIT_S=120        before each benchmark, wait for the machine to be idle (< 25 % busy
 *                                over 2 s), at most this long over the whole run; default 120 (0 in
 *                                quick mode). CPU used by other processes is recorded either way.
 * Full results: bench/results/<date>-<name>.json, bench/results/latest.{json,md}, and the generated
 * region of docs/benchmarks.md.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchContext, Benchmark } from './lib/bench.js';
import { busyNow, cpuShare, cpuSnapshot, machineInfo } from './lib/machine.js';
import { killChildren } from './lib/proc.js';
import { latestResults, renderMarkdown, RESULTS_DIR, updateDocs, writeResult, type StoredResult } from './lib/report.js';
import { attributionBench } from './attribution.bench.js';
import { ingestBench } from './ingest.bench.js';
import { pinPropagationBench } from './pin-propagation.bench.js';
import { pinPropagation5Bench } from './pin-propagation-5.bench.js';
import { redirectBench } from './redirect.bench.js';
import { relayBench } from './relay.bench.js';
import { syncBench } from './sync.bench.js';
import { clusterBench } from './cluster.bench.js';
import { ledgerBench } from './ledger.bench.js';
import { acrossTopologies, benchTopologies } from './lib/topology.js';

/** Registered benchmarks, in run order. Add new ones here (one file each: bench/<name>.bench.ts). */
// Issue 12 §8: every ratio row on one Redis and on the cluster (acrossTopologies: BENCH_TOPOLOGY)
export const BENCHMARKS: readonly Benchmark[] = [
  acrossTopologies(ingestBench),
  pinPropagationBench,
  acrossTopologies(redirectBench),
  acrossTopologies(syncBench),
  pinPropagation5Bench,
  acrossTopologies(attributionBench),
  ledgerBench,
  clusterBench,
  relayBench,
];

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    killChildren();
    process.exit(130);
  });
}

const quick = process.env.BENCH_QUICK === '1' || process.env.BENCH_QUICK === 'true';
const only = (process.env.BENCH_ONLY ?? '')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
const unknown = only.filter((n) => !BENCHMARKS.some((b) => b.name === n));
if (unknown.length) {
  process.stderr.write(`unknown benchmark(s): ${unknown.join(', ')}; known: ${BENCHMARKS.map((b) => b.name).join(', ')}\n`);
  process.exit(2);
}
const selected = BENCHMARKS.filter((b) => only.length === 0 || only.includes(b.name));
const profile = process.env.BENCH_PROFILE === '1';
// quick and profiled runs (the profiler slows the processes under test) never replace the results
const outDir = quick ? join(RESULTS_DIR, 'quick') : profile ? join(RESULTS_DIR, 'profiles') : RESULTS_DIR;
const ctx: BenchContext = {
  quick,
  log: (msg) => process.stderr.write(`[bench] ${msg}\n`),
  profileDir: profile ? join(RESULTS_DIR, 'profiles') : undefined,
  topology: 'single',
};

const machine = machineInfo();
ctx.log(`${machine.cores} cores, Node ${machine.node}, redis ${machine.redis}${quick ? ' — QUICK mode' : ''}; topologies ${benchTopologies().join(' + ')}`);
const t0 = Date.now();
let failed = false;
let idleBudgetMs = Number(process.env.BENCH_IDLE_WAIT_S ?? (quick ? 0 : 120)) * 1000;

/** Other work on the machine skews every number: wait (within a budget for the whole run) until it is quiet. */
async function waitForIdle(): Promise<number> {
  for (;;) {
    const busy = await busyNow();
    if (busy < 25 || idleBudgetMs <= 0) return busy;
    ctx.log(`   machine ${busy} % busy with other work; waiting (${Math.round(idleBudgetMs / 1000)} s of idle-wait budget left)`);
    const t = Date.now();
    await new Promise((r) => setTimeout(r, 5000));
    idleBudgetMs -= Date.now() - t + 2000;
  }
}

for (const b of selected) {
  ctx.log(`── ${b.name}: ${b.title}`);
  try {
    const busyBeforePct = await waitForIdle();
    const before = cpuSnapshot();
    const r = await b.run(ctx);
    const cpu = { busyBeforePct, ...cpuShare(before, cpuSnapshot()) };
    ctx.log(`   CPU during the run: machine ${cpu.machineBusyPct} % busy, this benchmark ${cpu.benchPct} %, other processes ${cpu.othersPct} %`);
    const file = writeResult(outDir, { ...r, machine, quick, cpu });
    ctx.log(`   ${b.name} done in ${r.durationS} s → ${file}`);
    if (r.failures?.length) {
      failed = true;
      ctx.log(`   ${b.name}: part FAILED (${r.failures.join(', ')}); its other rows are kept`);
    }
  } catch (err) {
    failed = true;
    ctx.log(`   ${b.name} FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  }
}

const results: StoredResult[] = latestResults(outDir, BENCHMARKS.map((b) => b.name));
const md = renderMarkdown(results);
writeFileSync(join(outDir, 'latest.md'), `# Benchmark results\n\n${md}\n`);
writeFileSync(join(outDir, 'latest.json'), JSON.stringify(results, null, 2) + '\n');
if (outDir === RESULTS_DIR && updateDocs(md)) ctx.log('docs/benchmarks.md updated');
process.stdout.write(`\n${md}\n`);
ctx.log(`total ${Math.round((Date.now() - t0) / 1000)} s`);
process.exit(failed ? 1 : 0);

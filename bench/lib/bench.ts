/** What every benchmark file exports and what it gets from bench/run.ts. */
import { median, round } from './stats.js';

export interface BenchContext {
  /** BENCH_QUICK=1: short durations and small counts, for development. Results are not comparable. */
  quick: boolean;
  /** Progress line on stderr. */
  log(msg: string): void;
  /** BENCH_PROFILE=1: where the processes under test write V8 CPU profiles (--cpu-prof). */
  profileDir: string | undefined;
  /**
   * Where the benchmark's Redis runs (bench/lib/topology.ts): one redis-server, or a 3+3 cluster.
   * Set per run by acrossTopologies(); 'single' for benchmarks that run on one Redis only.
   */
  topology: Topology;
}

export type Topology = 'single' | 'cluster';

/** One measured system: throughput and/or latency, in the unit the benchmark names. */
export interface Measure {
  /** e.g. requests/s, syncs/s. */
  throughput?: number;
  /** ms */
  p50?: number;
  /** ms */
  p99?: number;
  /** How many operations the numbers are based on. */
  count?: number;
  /** CPU time per operation by process (api, worker, redis…), ms: robust against other load on the machine. */
  cpuMsPerOp?: Record<string, number>;
  /** Where the latency goes, by stage: p50 ms of each. */
  breakdownP50?: Record<string, number>;
  /** Anything worth keeping in the JSON (errors, status codes, round-by-round figures). */
  extra?: Record<string, unknown>;
}

export interface Goal {
  /** Which ratio the goal is about. */
  ratio: 'throughput' | 'p50' | 'p99';
  /** ours/baseline must be ≥ min (throughput) or ≤ max (latency). */
  min?: number;
  max?: number;
  /** The bounds apply to ours' own value (e.g. first byte p99 < 2000 ms), not to the ratio. */
  absolute?: boolean;
  /** Also: ours' CPU per operation of this process ≤ max × the baseline's (cpuMsPerOp). */
  cpu?: { process: string; max: number };
  /** The issue that set this goal, when not the benchmark's own. */
  issue?: string;
}

/** ours' CPU per operation of `process` over the baseline's (NaN when either is missing). */
export function cpuRatio(ours: Measure, baseline: Measure, process: string): number {
  const a = ours.cpuMsPerOp?.[process];
  const b = baseline.cpuMsPerOp?.[process];
  return a !== undefined && b !== undefined && b > 0 ? a / b : Number.NaN;
}

export interface ResultRow {
  scenario: string;
  /** Unit of throughput (req/s, syncs/s). */
  unit: string;
  ours: Measure;
  baseline: Measure;
  /** What the baseline is, in a few words. */
  baselineLabel: string;
  /** ours/baseline for throughput, or for p50 latency when there is no throughput. */
  ratio: number;
  ratioOf: 'throughput' | 'p50';
  goal?: Goal;
  met?: boolean;
  /**
   * The row was measured in several alternated pairs (ours and baseline one after the other, which
   * goes first alternating): `ratio`, and the goal, are the median of the pairs' ratios; `ours` and
   * `baseline` hold each side's median. Rows without it (and results written before it): one pair.
   */
  pairs?: PairedRatio;
}

/** One pair's ours and baseline (in the row's unit), their ratio, which went first, and the other processes' load during each. */
export interface RatioPair {
  ours: number;
  baseline: number;
  ratio: number;
  first: 'ours' | 'baseline';
  /** CPU used by processes outside the benchmark over each side's window, % of all cores. */
  othersPct?: { ours: number; baseline: number };
}

export interface PairedRatio {
  median: number;
  min: number;
  max: number;
  each: RatioPair[];
}

/** The pairs' ratios (ours / baseline each) and their median, min and max. */
export function pairedRatio(each: ReadonlyArray<Omit<RatioPair, 'ratio'>>): PairedRatio {
  const withRatio = each.map((p) => ({ ...p, ratio: p.baseline > 0 ? p.ours / p.baseline : Number.NaN }));
  const ratios = withRatio.map((p) => p.ratio);
  return { median: median(ratios), min: Math.min(...ratios), max: Math.max(...ratios), each: withRatio };
}

export interface BenchResult {
  name: string;
  title: string;
  issue: string;
  startedAt: string;
  durationS: number;
  /** How it was run: connections, durations, counts, fsync mode, where the workers ran... */
  setup: Record<string, unknown>;
  rows: ResultRow[];
  notes: string[];
  /** Parts that failed while others produced rows (a topology of acrossTopologies): the run exits non-zero. */
  failures?: string[];
}

export interface Benchmark {
  name: string;
  title: string;
  issue: string;
  run(ctx: BenchContext): Promise<BenchResult>;
}

/** The fields a result opens with: the benchmark's name, title and issue, when it started (`started`, a Date.now()) and how long it has run, in s. */
export function resultHead(bench: Pick<Benchmark, 'name' | 'title' | 'issue'>, started: number): Pick<BenchResult, 'name' | 'title' | 'issue' | 'startedAt' | 'durationS'> {
  return { name: bench.name, title: bench.title, issue: bench.issue, startedAt: new Date(started).toISOString(), durationS: round((Date.now() - started) / 1000, 1) };
}

export function ratioRow(r: Omit<ResultRow, 'ratio' | 'met'>): ResultRow {
  const pick = (m: Measure): number | undefined => (r.ratioOf === 'throughput' ? m.throughput : m.p50);
  const a = pick(r.ours);
  const b = pick(r.baseline);
  const ratio = r.pairs ? r.pairs.median : a !== undefined && b !== undefined && b > 0 ? a / b : Number.NaN;
  let met: boolean | undefined;
  if (r.goal) {
    const g = r.goal;
    const v = g.absolute ? (r.ours[g.ratio] ?? Number.NaN) : g.ratio === 'throughput' ? ratio : ratioOf(r.ours, r.baseline, g.ratio);
    met = (g.min === undefined || v >= g.min) && (g.max === undefined || v <= g.max) && (g.cpu === undefined || cpuRatio(r.ours, r.baseline, g.cpu.process) <= g.cpu.max);
  }
  return { ...r, ratio, ...(met !== undefined ? { met } : {}) };
}

function ratioOf(a: Measure, b: Measure, k: 'p50' | 'p99'): number {
  const x = a[k];
  const y = b[k];
  return x !== undefined && y !== undefined && y > 0 ? x / y : Number.NaN;
}


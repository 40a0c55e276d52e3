/**
 * Alternated pairs, for a row whose ratio moves between runs minutes apart on a 2-core VM more than its
 * code does (the relay's CPU per stream, the redirect's bare 302): one run measures several pairs, ours
 * and the baseline one after the other, the baseline first in pairs 1, 3, … and ours first in 2, 4, …,
 * so that a drift in the machine's load weighs on both sides. The row's ratio is then the median of the
 * pairs' ratios (pairedRatio in ./bench.ts), with every pair listed in the result.
 */
import { cpus } from 'node:os';
import { pairedRatio, type PairedRatio, type RatioPair } from './bench.js';
import { cpuShare, cpuSnapshot } from './machine.js';
import { cpuBetween, treeCpu } from './proctree.js';
import { round } from './stats.js';

/** How many pairs one run measures: the whole number in env `name` (≥ 1), else 3, or 1 with BENCH_QUICK. */
export function pairCount(name: string, quick: boolean): number {
  const raw = process.env[name];
  const v = raw === undefined || raw.trim() === '' ? (quick ? 1 : 3) : Number(raw);
  if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a whole number ≥ 1, got '${raw}'`);
  return v;
}

/** One pair's measurements of both sides, and which side ran first. */
export interface Paired<T> {
  ours: T;
  baseline: T;
  first: RatioPair['first'];
}

/** Which side goes first in pair `k` (1-based): the baseline in odd pairs, ours in even ones. */
export function firstOf(k: number): RatioPair['first'] {
  return k % 2 === 1 ? 'baseline' : 'ours';
}

/**
 * `count` pairs of `measure`, one side after the other, the first as firstOf(pair); `measure` gets the
 * side and the pair's number, `onPair` each pair as it completes (to log it).
 */
export async function runPairs<T>(count: number, measure: (side: RatioPair['first'], pair: number) => Promise<T>, onPair?: (pair: Paired<T>, k: number) => void): Promise<Paired<T>[]> {
  const pairs: Paired<T>[] = [];
  for (let k = 1; k <= count; k++) {
    const first = firstOf(k);
    const a = await measure(first, k);
    const b = await measure(first === 'ours' ? 'baseline' : 'ours', k);
    const pair: Paired<T> = first === 'ours' ? { ours: a, baseline: b, first } : { ours: b, baseline: a, first };
    onPair?.(pair, k);
    pairs.push(pair);
  }
  return pairs;
}

/** The pairs' ratios of `value` (ours / baseline each, the row's ratio their median), with each side's `othersPct` when given. */
export function ratioOfPairs<T>(pairs: ReadonlyArray<Paired<T>>, value: (r: T) => number, othersPct?: (r: T) => number): PairedRatio {
  return pairedRatio(pairs.map((x) => ({ ours: value(x.ours), baseline: value(x.baseline), first: x.first, ...(othersPct ? { othersPct: { ours: othersPct(x.ours), baseline: othersPct(x.baseline) } } : {}) })));
}

/** The machine's load over a window: how busy it was, and the share (of all cores, %) used outside this process's tree. */
export interface WindowLoad {
  machineBusyPct: number;
  othersPct: number;
}

/**
 * Starts measuring the machine's load; the returned function ends the window. "This process's tree"
 * is the bench process and every process it spawned that is still alive (systems under test,
 * redis-servers, ffmpeg): what is left of the machine's busy time is other processes'.
 */
export function windowLoad(): () => WindowLoad {
  const machineA = cpuSnapshot();
  const benchA = treeCpu([process.pid]);
  const tA = Date.now();
  return () => {
    const benchB = treeCpu([process.pid]);
    const machine = cpuShare(machineA, cpuSnapshot());
    const windowMs = Date.now() - tA;
    const benchPct = windowMs > 0 ? (cpuBetween(benchA, benchB) / (windowMs * cpus().length)) * 100 : Number.NaN;
    return { machineBusyPct: machine.machineBusyPct, othersPct: round(Math.max(0, machine.machineBusyPct - benchPct), 1) };
  };
}

/** Results on disk: one JSON per benchmark and day, latest.json/latest.md, and the table in docs/benchmarks.md. */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { cpuRatio, type BenchResult, type Measure, type ResultRow } from './bench.js';
import type { CpuShare, MachineInfo } from './machine.js';

export const RESULTS_DIR = resolve('bench', 'results');
export const DOCS_FILE = resolve('docs', 'benchmarks.md');
export const DOCS_BEGIN = '<!-- bench:results:begin (written by npm run bench) -->';
export const DOCS_END = '<!-- bench:results:end -->';

export interface StoredResult extends BenchResult {
  machine: MachineInfo;
  quick: boolean;
  /** CPU use during the run (2 cores = 100 %): how much other processes competed with it. */
  cpu?: CpuShare & { busyBeforePct: number };
}

export function writeResult(dir: string, r: StoredResult): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${r.startedAt.slice(0, 10)}-${r.name}.json`);
  writeFileSync(file, JSON.stringify(r, null, 2) + '\n');
  return file;
}

/** The newest stored result of each benchmark in `dir` (file names sort by date). */
export function latestResults(dir: string, names: readonly string[]): StoredResult[] {
  if (!existsSync(dir)) return [];
  const files = readdirSync(dir).filter((f) => /^\d{4}-\d{2}-\d{2}-.+\.json$/.test(f)).sort();
  const out: StoredResult[] = [];
  for (const name of names) {
    const file = files.filter((f) => f.slice(11, -5) === name).pop();
    if (file) out.push(JSON.parse(readFileSync(join(dir, file), 'utf8')) as StoredResult);
  }
  return out;
}

const nf = (x: number, digits = 0): string => (Number.isFinite(x) ? x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : 'n/a');
/** A throughput or size: whole numbers from 100 up, else 2–3 significant digits (0.417, not 0). */
const qty = (x: number): string => (Math.abs(x) >= 100 || Number.isInteger(x) ? nf(x) : Math.abs(x) >= 10 ? nf(x, 1) : Math.abs(x) >= 1 ? nf(x, 2) : nf(x, 3));
const ms = (x: number | undefined): string => (x === undefined ? '' : x < 10 ? nf(x, 2) : x < 100 ? nf(x, 1) : nf(x, 0));

function cell(m: Measure, unit: string): string {
  const parts: string[] = [];
  if (m.throughput !== undefined) parts.push(`${qty(m.throughput)} ${unit}`);
  if (m.p50 !== undefined) parts.push(`p50 ${ms(m.p50)} ms`);
  if (m.p99 !== undefined) parts.push(`p99 ${ms(m.p99)} ms`);
  return parts.join(' · ');
}

function ratioCell(r: ResultRow): string {
  const v = nf(r.ratio, 2);
  const cell = r.ratioOf === 'throughput' ? v : `${v} (p50 latency)`;
  // measured in pairs: the median of the pairs' ratios, and their spread
  const p = r.pairs;
  return p && p.each.length > 1 ? `${cell} (median of ${p.each.length} pairs, ${nf(p.min, 2)}–${nf(p.max, 2)})` : cell;
}

/** Each pair of a row measured in pairs: ours, baseline, ratio, which went first, and the other processes' load. */
function pairLines(r: ResultRow): string[] {
  if (!r.pairs) return [];
  const each = r.pairs.each.map((p, i) => {
    const load = p.othersPct ? `, others ${nf(p.othersPct.ours, 1)} % / ${nf(p.othersPct.baseline, 1)} %` : '';
    return `${i + 1} (${p.first} first): ours ${qty(p.ours)}, baseline ${qty(p.baseline)}, ${nf(p.ratio, 2)}${load}`;
  });
  return [`- pairs, ${r.scenario} (${r.unit}; ratio = median ${nf(r.pairs.median, 2)}, ${nf(r.pairs.min, 2)}–${nf(r.pairs.max, 2)}): ${each.join('; ')}`];
}

function goalCell(r: ResultRow): string {
  if (!r.goal) return '—';
  const g = r.goal;
  const what = g.ratio === 'throughput' ? '' : ` (${g.ratio})`;
  const cond = g.min !== undefined ? `≥ ${g.min}` : `≤ ${g.max ?? ''}`;
  if (g.absolute) return `ours${g.ratio === 'throughput' ? '' : ` ${g.ratio}`} ${cond}${g.ratio === 'throughput' ? '' : ' ms'} ${r.met ? '✅' : '❌'}`;
  const cpu = g.cpu ? `, ${g.cpu.process} CPU/op ≤ ${g.cpu.max}× (${nf(cpuRatio(r.ours, r.baseline, g.cpu.process), 2)}×)` : '';
  return `${cond}${what}${cpu}${g.issue ? ` (#${g.issue})` : ''} ${r.met ? '✅' : '❌'}`;
}

export function summaryTable(results: readonly StoredResult[]): string {
  const lines = ['| Benchmark | Scenario | Ours | Baseline | Ours / baseline | Goal |', '|---|---|---|---|---|---|'];
  for (const res of results) {
    for (const r of res.rows) {
      lines.push(`| ${res.name} (#${res.issue}) | ${r.scenario} | ${cell(r.ours, r.unit)} | ${cell(r.baseline, r.unit)} — ${r.baselineLabel} | ${ratioCell(r)} | ${goalCell(r)} |`);
    }
  }
  return lines.join('\n');
}

function cpuCell(m: Measure): string {
  if (!m.cpuMsPerOp) return '';
  return Object.entries(m.cpuMsPerOp)
    .filter(([, v]) => Number.isFinite(v))
    .map(([k, v]) => `${k} ${nf(v, 3)}`)
    .join(' · ');
}

function detailTable(res: StoredResult): string {
  const withBreakdown = res.rows.some((r) => r.ours.breakdownP50 || r.baseline.breakdownP50);
  const lines = [
    `| Scenario | System | Throughput | p50 ms | p99 ms | n | CPU ms per op |${withBreakdown ? ' p50 by stage, ms |' : ''}`,
    `|---|---|---|---|---|---|---|${withBreakdown ? '---|' : ''}`,
  ];
  for (const r of res.rows) {
    for (const [who, m] of [['ours', r.ours], [`baseline: ${r.baselineLabel}`, r.baseline]] as const) {
      const tp = m.throughput !== undefined ? `${qty(m.throughput)} ${r.unit}` : '';
      const stages = withBreakdown ? ` ${Object.entries(m.breakdownP50 ?? {}).map(([k, v]) => `${k} ${ms(v)}`).join(' · ')} |` : '';
      lines.push(`| ${r.scenario} | ${who} | ${tp} | ${ms(m.p50)} | ${ms(m.p99)} | ${m.count !== undefined ? nf(m.count) : ''} | ${cpuCell(m)} |${stages}`);
    }
  }
  return lines.join('\n');
}

function setupLines(setup: Record<string, unknown>): string[] {
  return Object.entries(setup).map(([k, v]) => `- ${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`);
}

export function machineLine(m: MachineInfo): string {
  return `${m.cores} × ${m.cpuModel}, ${m.memoryGiB} GiB RAM, ${m.os}; Node ${m.node}; redis-server ${m.redis}; commit ${m.commit}`;
}

export function renderMarkdown(results: readonly StoredResult[]): string {
  const out: string[] = [];
  const machines = [...new Set(results.map((r) => machineLine(r.machine)))];
  out.push(`Machine: ${machines.join(' / ')}`, '');
  const dates = results.map((r) => `${r.name} ${r.startedAt.slice(0, 16).replace('T', ' ')} UTC (${r.durationS} s${r.quick ? ', QUICK' : ''})`);
  out.push(`Runs: ${dates.join('; ')}`, '');
  out.push(summaryTable(results), '');
  for (const res of results) {
    out.push(`### ${res.name} — ${res.title} (issue ${res.issue})`, '');
    if (res.cpu) {
      out.push(`- CPU during the run (all cores = 100 %): machine ${res.cpu.machineBusyPct} % busy, this benchmark ${res.cpu.benchPct} %, other processes ${res.cpu.othersPct} % (busy before start: ${res.cpu.busyBeforePct} %)`);
    }
    out.push(...setupLines(res.setup));
    for (const n of res.notes) out.push(`- note: ${n}`);
    out.push(...res.rows.flatMap(pairLines));
    out.push('', detailTable(res), '');
  }
  return out.join('\n');
}

/** Replace the generated region of docs/benchmarks.md (the prose around it is written by hand). */
export function updateDocs(markdown: string): boolean {
  if (!existsSync(DOCS_FILE)) return false;
  const doc = readFileSync(DOCS_FILE, 'utf8');
  const a = doc.indexOf(DOCS_BEGIN);
  const b = doc.indexOf(DOCS_END);
  if (a < 0 || b < a) return false;
  writeFileSync(DOCS_FILE, `${doc.slice(0, a + DOCS_BEGIN.length)}\n${markdown}\n${doc.slice(b)}`);
  return true;
}

/**
 * Summarise a V8 CPU profile written with BENCH_PROFILE=1:
 *   npx tsx bench/profile.ts bench/results/profiles/syndicast-api-….cpuprofile [top]
 * Prints self time by package / area, the hottest functions (self), and the inclusive time of
 * Syndicast's own functions (src/, workers/) — where a request or a job spends its CPU.
 * PROFILE_WINDOWS=from-to[,from-to…] (µs of the monotonic clock, process.hrtime, which the profile's
 * timestamps use: bench/sync-ab.ts prints its pin phases' windows) counts only the samples inside them;
 * PROFILE_OPS=n also prints the busy time (every sample but `(idle)`) per operation.
 */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const file = process.argv[2];
const top = Number(process.argv[3] ?? 25);
if (!file) {
  process.stderr.write('usage: tsx bench/profile.ts <file.cpuprofile> [top]\n');
  process.exit(2);
}
const prof = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
const windows = (process.env['PROFILE_WINDOWS'] ?? '')
  .split(',')
  .filter((w) => w.includes('-'))
  .map((w) => w.split('-').map(Number) as [number, number]);
const ops = Number(process.env['PROFILE_OPS'] ?? 0);
const inWindow = (t: number): boolean => windows.length === 0 || windows.some(([a, b]) => t >= a && t <= b);
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

function area(cf: CallFrame): string {
  const u = cf.url;
  if (!u) return cf.functionName.startsWith('(') ? cf.functionName : '(native)';
  if (u.startsWith('node:')) return 'node:' + u.slice(5).split('/')[0];
  const nm = u.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const parts = u.slice(nm + 13).split('/');
    return parts[0]?.startsWith('@') ? `${parts[0]}/${parts[1] ?? ''}` : (parts[0] ?? u);
  }
  const path = u.replace(/^file:\/\//, '');
  return relative(process.cwd(), path);
}
function fnKey(cf: CallFrame): string {
  return `${cf.functionName || '(anonymous)'} ${area(cf)}:${cf.lineNumber + 1}`;
}

const selfByFn = new Map<string, number>();
const selfByArea = new Map<string, number>();
const inclusiveOwn = new Map<string, number>();
let total = 0;
let idle = 0;
let at = prof.startTime;
prof.samples.forEach((id, i) => {
  const dt = prof.timeDeltas[i] ?? 0;
  at += dt;
  const node = byId.get(id);
  if (!node || !inWindow(at)) return;
  total += dt;
  if (node.callFrame.functionName === '(idle)') idle += dt;
  const cf = node.callFrame;
  selfByFn.set(fnKey(cf), (selfByFn.get(fnKey(cf)) ?? 0) + dt);
  const a = area(cf);
  const group = a.startsWith('src/') || a.startsWith('workers/') || a.startsWith('bench/') ? 'syndicast (src/, workers/, bench/)' : a;
  selfByArea.set(group, (selfByArea.get(group) ?? 0) + dt);
  // inclusive time of our own functions: count each once per sample
  const seen = new Set<string>();
  for (let n: ProfileNode | undefined = node; n; n = byId.get(parent.get(n.id) ?? -1)) {
    const ar = area(n.callFrame);
    if (!(ar.startsWith('src/') || ar.startsWith('workers/'))) continue;
    const k = fnKey(n.callFrame);
    if (seen.has(k)) continue;
    seen.add(k);
    inclusiveOwn.set(k, (inclusiveOwn.get(k) ?? 0) + dt);
  }
});

const pct = (x: number): string => `${((x / total) * 100).toFixed(1).padStart(5)} %`;
const print = (title: string, m: Map<string, number>, n: number): void => {
  process.stdout.write(`\n${title}\n`);
  for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, n)) process.stdout.write(`  ${pct(v)}  ${k}\n`);
};
process.stdout.write(`${file}: ${(total / 1e6).toFixed(1)} s sampled${windows.length ? ` in ${windows.length} window(s)` : ''}, ${((total - idle) / 1e6).toFixed(2)} s busy${ops > 0 ? `, ${((total - idle) / ops).toFixed(0)} µs busy per operation (${ops})` : ''}\n`);
print('Self time by area', selfByArea, top);
print('Self time by function', selfByFn, top);
print('Inclusive time of Syndicast functions', inclusiveOwn, top);

/**
 * Summarise a V8 CPU profile written with BENCH_PROFILE=1:
 *   npx tsx bench/profile.ts bench/results/profiles/syndicast-api-….cpuprofile [top]
 * Prints self time by package / area, the hottest functions (self), and the inclusive time of
 * Syndicast's own functions (src/, workers/) — where a request or a job spends its CPU.
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
prof.samples.forEach((id, i) => {
  const dt = prof.timeDeltas[i] ?? 0;
  const node = byId.get(id);
  if (!node) return;
  total += dt;
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
process.stdout.write(`${file}: ${(total / 1e6).toFixed(1)} s sampled\n`);
print('Self time by area', selfByArea, top);
print('Self time by function', selfByFn, top);
print('Inclusive time of Syndicast functions', inclusiveOwn, top);

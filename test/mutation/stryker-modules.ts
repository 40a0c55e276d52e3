/**
 * `npm run test:mutation [-- <module> ...]`: StrykerJS over each module of stryker.config.mjs in turn
 * (all of them without arguments), then one line per module with its mutation score. Heavy: run it
 * under the lock (`flock /tmp/syndicast-heavy.lock npm run test:mutation -- money`). Scores and the
 * surviving mutants are discussed in docs/testing.md.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

const MODULES = JSON.parse(readFileSync(new URL('./modules.json', import.meta.url), 'utf8')) as Record<string, { mutate: string[]; tests: string[]; coverageAnalysis?: string }>;

interface MutantResult {
  status: string;
}
interface Report {
  files: Record<string, { mutants: MutantResult[] }>;
}

const DETECTED = new Set(['Killed', 'Timeout']);
const VALID = new Set(['Killed', 'Timeout', 'Survived', 'NoCoverage']);

function score(module: string): string {
  const path = `reports/mutation/${module}.json`;
  if (!existsSync(path)) return 'no report';
  const report = JSON.parse(readFileSync(path, 'utf8')) as Report;
  const mutants = Object.values(report.files).flatMap((f) => f.mutants);
  const valid = mutants.filter((m) => VALID.has(m.status));
  const killed = valid.filter((m) => DETECTED.has(m.status)).length;
  const survived = valid.filter((m) => m.status === 'Survived').length;
  const noCov = valid.filter((m) => m.status === 'NoCoverage').length;
  return `${((100 * killed) / Math.max(valid.length, 1)).toFixed(2)} % killed (${killed}/${valid.length}; ${survived} survived, ${noCov} without coverage)`;
}

function main(args: string[]): number {
  const names = Object.keys(MODULES);
  const unknown = args.filter((a) => !names.includes(a));
  if (unknown.length) {
    console.error(`unknown module(s): ${unknown.join(', ')}; modules: ${names.join(', ')}`);
    return 2;
  }
  const chosen = args.length ? args : names;
  let failed = false;
  for (const module of chosen) {
    console.log(`\n=== mutation testing: ${module} ===`);
    const r = spawnSync('npx', ['stryker', 'run', 'stryker.config.mjs'], { stdio: 'inherit', env: { ...process.env, STRYKER_MODULE: module } });
    if (r.status !== 0) failed = true;
  }
  console.log('\nmutation scores:');
  for (const module of chosen) console.log(`  ${module.padEnd(14)} ${score(module)}`);
  return failed ? 1 : 0;
}

process.exitCode = main(process.argv.slice(2));

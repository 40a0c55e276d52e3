/**
 * Runs every test of the given files on its own (`npm test -- <file> -t '^<full name>$'`) and reports
 * the ones that fail alone — tests that pass only because another test ran first (issue 13).
 *
 *   flock /tmp/syndicast-heavy.lock npm run test:alone -- test/integration/attribution.rules.test.ts
 *
 * A file's test names come from one jest run of the whole file (`--json`). Heavy: one jest start per
 * test; run it on the files you touched, under the lock.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

interface JestJson {
  testResults: { name: string; assertionResults: { fullName: string; status: string }[] }[];
}

function jest(args: string[]): { status: number | null; out: string } {
  const r = spawnSync('npm', ['test', '--', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return { status: r.status, out: `${r.stdout}\n${r.stderr}` };
}

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function main(files: string[]): number {
  if (files.length === 0) {
    console.error('usage: npm run test:alone -- <test file> ...');
    return 2;
  }
  const dir = mkdtempSync(join(tmpdir(), 'each-test-alone-'));
  const failures: string[] = [];
  try {
    for (const file of files) {
      const out = join(dir, 'results.json');
      const all = jest([file, '--json', `--outputFile=${out}`]);
      const json = JSON.parse(readFileSync(out, 'utf8')) as JestJson;
      const tests = json.testResults.flatMap((t) => t.assertionResults);
      const failedTogether = tests.filter((t) => t.status === 'failed').map((t) => t.fullName);
      if (all.status !== 0) console.log(`${file}: ${failedTogether.length} test(s) fail even with the whole file: ${failedTogether.join('; ')}`);
      for (const t of tests) {
        if (t.status !== 'passed') continue;
        const r = jest([file, '-t', `^${escape(t.fullName)}$`]);
        const ok = r.status === 0 && /Tests:\s+.*1 passed/.test(r.out);
        console.log(`${ok ? 'ok     ' : 'FAILS  '} ${file} › ${t.fullName}`);
        if (!ok) failures.push(`${file} › ${t.fullName}`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(failures.length ? `\n${failures.length} test(s) fail alone:\n${failures.join('\n')}` : '\nevery test passes alone');
  return failures.length ? 1 : 0;
}

process.exitCode = main(process.argv.slice(2));

/**
 * Every known mutant (test/mutation/known-mutants.ts) still names code that exists exactly once, so
 * `npm run test:mutants` can apply it. A mutant whose `from` no longer matches once is "stale": it
 * silently stops guarding anything (sweep-first-page-only was, for a session, after a second ZSCAN
 * loop was added next to the one it breaks). Running the mutants is heavy; this check is not.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { KNOWN_MUTANTS } from '../mutation/known-mutants.js';

test('the list is not empty and names are unique', () => {
  expect(KNOWN_MUTANTS.length).toBeGreaterThan(0);
  expect(new Set(KNOWN_MUTANTS.map((m) => m.name)).size).toBe(KNOWN_MUTANTS.length);
});

test.each(KNOWN_MUTANTS.map((m) => [m.name, m] as const))('%s: its code occurs exactly once, and its tests exist', (_name, m) => {
  const code = readFileSync(resolve(m.file), 'utf8');
  expect(code.split(m.from).length - 1).toBe(1);
  expect(m.to).not.toBe(m.from);
  for (const t of m.tests) expect(existsSync(resolve(t))).toBe(true);
});

/**
 * docs/testing.md documents every known mutant: its table (the one whose header begins
 * "| mutant (") has a row whose first column is the mutant's name in backticks, and the line
 * that runs them all says "all N of them" with N the length of the list. Nothing checked this,
 * so a mutant added without a row (or the count left behind) went unnoticed.
 */
describe('docs/testing.md lists every known mutant', () => {
  const doc = readFileSync(resolve('docs/testing.md'), 'utf8').split('\n');
  const header = doc.findIndex((l) => l.startsWith('| mutant ('));
  const rows: string[] = [];
  for (let i = header + 2; header >= 0 && doc[i]?.startsWith('|'); i++) rows.push(doc[i]!);
  const documented = new Set(rows.map((r) => /^\|\s*`([^`]+)`\s*\|/.exec(r)?.[1]).filter((n): n is string => n !== undefined));

  test('the table is found', () => {
    expect(header).toBeGreaterThanOrEqual(0);
    expect(rows.length).toBeGreaterThan(0);
  });

  test('every mutant has a row', () => {
    expect(KNOWN_MUTANTS.map((m) => m.name).filter((n) => !documented.has(n))).toEqual([]);
  });

  test('"all N of them" is the length of the list', () => {
    const counts = doc.join('\n').match(/all (\d+) of them/g) ?? [];
    expect(counts).toEqual([`all ${KNOWN_MUTANTS.length} of them`]);
  });
});

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

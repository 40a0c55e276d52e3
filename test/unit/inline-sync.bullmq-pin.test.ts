/**
 * INGEST_SYNC_JOBS=inline (src/queues/inline-sync.ts) copies BullMQ 5.81.5's `addStandardJob-9.lua` and
 * the includes it names into the ingest script, and relies on the `dn:` follow-up protocol that
 * `moveToFinished-14.lua` reads back. BullMQ may change those in any release: package.json pins it to
 * the exact version (package-lock in step), and this test fails when the installed BullMQ's scripts
 * differ from the ones the copy was written against (sha256 of the bundled scripts BullMQ runs).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname ?? '.', '../..');
/** What BullMQ runs (the ESM build this project imports): each script bundled with every include it names, transitively. */
const SCRIPTS = join(root, 'node_modules/bullmq/dist/esm/scripts');
const BULLMQ_PIN = '5.81.5';

/**
 * sha256 of the bundled scripts the inline add copies (addStandardJob) and relies on (moveToFinished,
 * which reads its `dn:` follow-up back through requeueDeduplicatedJob), BullMQ 5.81.5. The bundles,
 * not dist/esm/commands/*.lua: those are the readable sources (re-read them), but the bundles are what
 * runs, includes and all, so a patched install (patch-package, a fork at the same version) shows here too.
 */
const RECORDED: Record<string, string> = {
  'addStandardJob-9.js': '1902b1c6fd90717f60883ba9dad9b3df2f417c815cdd7c2b5b92de134dffdbb8',
  'moveToFinished-14.js': 'aa03409ff418aca841b9b4fc3876d1ba0f734c9c5ae66917f18eb08de7e9a913',
};

const REREAD = `BullMQ's scripts changed: re-read src/queues/inline-sync.ts (inlineSyncAddLua, optsTemplate) against the new ones (node_modules/bullmq/dist/esm/commands/addStandardJob-9.lua and its includes), run test/integration/inline-sync.conformance.test.ts, then record the new hashes here`;

function scriptHashes(): Record<string, string> {
  return Object.fromEntries(Object.keys(RECORDED).map((f) => [f, createHash('sha256').update(readFileSync(join(SCRIPTS, f))).digest('hex')]));
}

test('package.json pins BullMQ to the exact version the inline add was written against, and that version is installed', () => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string; dependencies?: Record<string, string> }> };
  const installed = (JSON.parse(readFileSync(join(root, 'node_modules/bullmq/package.json'), 'utf8')) as { version: string }).version;
  expect({ pkg: pkg.dependencies['bullmq'], lockRoot: lock.packages['']?.dependencies?.['bullmq'], lock: lock.packages['node_modules/bullmq']?.version, installed }).toEqual({ pkg: BULLMQ_PIN, lockRoot: BULLMQ_PIN, lock: BULLMQ_PIN, installed: BULLMQ_PIN });
});

test("BullMQ's addStandardJob and moveToFinished scripts (bundled with their includes) are the ones src/queues/inline-sync.ts copies", () => {
  const now = scriptHashes();
  const changed = Object.keys(RECORDED).filter((f) => now[f] !== RECORDED[f]);
  if (changed.length > 0) throw new Error(`${REREAD}. Changed: ${changed.join(', ')}`);
});

/**
 * INGEST_SYNC_JOBS=inline (src/queues/inline-sync.ts) copies BullMQ 5.81.5's `addStandardJob-9.lua` and
 * the includes it names into the ingest script, and relies on the `dn:` follow-up protocol that
 * `moveToFinished-14.lua` reads back. BullMQ may change those in any release: package.json pins it to
 * the exact version (package-lock in step), and this test fails when the installed BullMQ's scripts
 * differ from the ones the copy was written against (sha256 of each file's text).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname ?? '.', '../..');
const COMMANDS = join(root, 'node_modules/bullmq/dist/esm/commands');
const BULLMQ_PIN = '5.81.5';

/** sha256 of the scripts the inline add copies (and of moveToFinished, which reads its `dn:` follow-up back), BullMQ 5.81.5. */
const RECORDED: Record<string, string> = {
  "addStandardJob-9.lua": "cc611f467f381c083038510dfe38398a539a4b0e27db8a1b6f72ac18513661f5",
  "includes/addBaseMarkerIfNeeded.lua": "bbdfb3922acec0e812a1f99988160bb7faab8099bf402d3cfc2dc96f81b6c00f",
  "includes/addDelayMarkerIfNeeded.lua": "1a55c5edda6b3c54270831aad482f7e9850f492fd89660a50e63eabdb31c9656",
  "includes/addJobInTargetList.lua": "356385ce8c4ba1841de955ac76af5381f3b2074628133e870c2035c3d64a62a2",
  "includes/addJobWithPriority.lua": "b01312aa67e05384933c9a8d0f5ca752e6fb6a10d23cfb1da6988d566758dfc7",
  "includes/checkItemInList.lua": "a888671a40c224431011055d0042f8daa6e7d52ed17ac27ebeddcc1a6f3eeb9d",
  "includes/deduplicateJob.lua": "5947c057d2185acb7cf263bf7e991d0148aa9d11622bd4d55c8fa10c362b5915",
  "includes/deduplicateJobWithoutReplace.lua": "221d0795427a01b90a57b9e7853dada55c8e19f44fbd72eb6f2c3c0802dbc036",
  "includes/getNextDelayedTimestamp.lua": "b2e7b56676668f78ea01270f3daab3667ab68ea963671b3468e2018af75eb6e4",
  "includes/getOrSetMaxEvents.lua": "ec9e059a7d303cff34329453cc4747be9f20bc4824abcb397ca4847c52bac8c4",
  "includes/getPriorityScore.lua": "2543a3e682c15d9d8466b633aeb3a6d54a813ec23b5aa7aaf636457d62610206",
  "includes/getTargetQueueList.lua": "8699e63a0ee71a33b8be276712392e2b15d739ae65687e6637d5826d458c0a55",
  "includes/handleDuplicatedJob.lua": "9c7c05cc2702e75a1627268b73827f8079fb90da7b43b6ac51c286b9dccf6b88",
  "includes/isQueuePausedOrMaxed.lua": "b347fdeb087c7a7c6fda41e845f56f6ab8a34999238cff57fc33efcf63e9bee3",
  "includes/moveParentToWait.lua": "1f0c8b0efb67231ad140a9dcbbb4aeaf43a1814bfe00e6971339c26d5a81d34b",
  "includes/moveParentToWaitIfNeeded.lua": "c617af1b7998643ef46aefd2532f450551427a28201ecc6d1301f161afd2aa64",
  "includes/moveParentToWaitIfNoPendingDependencies.lua": "10932e7bc87bc1ea6e48ec803955b7cc00aac2adb6cf2cbf12bb596d3c5b3363",
  "includes/removeJobKeys.lua": "3ef7537779443d1f580acce3352f3d57050b9dbbac952c62911ca36d4201ad67",
  "includes/setDeduplicationKey.lua": "c9865740e8ac92b8e13203ab5e68043f12d564d40ee6addb0830f916074167f0",
  "includes/storeDeduplicatedNextJob.lua": "a1e40cefd76b83cc759c2f4c6930ced30a9941905e6e07485e3903dd4cc6a26c",
  "includes/storeJob.lua": "34bf9c99ad762cae3fa0a1a5a265e8ff63b598b5b9d7d0ebbfa8f56091b30dc1",
  "includes/updateExistingJobsParent.lua": "cf57067f5bb8abb4420ea016c86074ff492dd1f566735bdadebcc3e013cba817",
  "includes/updateParentDepsIfNeeded.lua": "35d3815946403dc42be08b3e652e6a67d947c5fb331c4759b8a04be6e7a6cf1a",
  "moveToFinished-14.lua": "0787e53dfdb8cbaefedd53e6843d41fa5e3068585dc364ac116f5878856a76e4",
};

const REREAD = `BullMQ's scripts changed: re-read src/queues/inline-sync.ts (inlineSyncAddLua, optsTemplate) against the new ones, run test/integration/inline-sync.conformance.test.ts, then record the new hashes here`;

/** addStandardJob-9.lua and every include it names, transitively (`--- @include "…"`), plus moveToFinished-14.lua. */
function scriptFiles(): string[] {
  const out = new Set<string>(['addStandardJob-9.lua', 'moveToFinished-14.lua']);
  const todo = ['addStandardJob-9.lua'];
  while (todo.length > 0) {
    const f = todo.pop()!;
    for (const m of readFileSync(join(COMMANDS, f), 'utf8').matchAll(/^--- @include "(?:includes\/)?([^"]+)"/gm)) {
      const inc = `includes/${m[1]}.lua`;
      if (!out.has(inc)) {
        out.add(inc);
        todo.push(inc);
      }
    }
  }
  return [...out].sort();
}

function scriptHashes(): Record<string, string> {
  return Object.fromEntries(scriptFiles().map((f) => [f, createHash('sha256').update(readFileSync(join(COMMANDS, f))).digest('hex')]));
}

test('package.json pins BullMQ to the exact version the inline add was written against, and that version is installed', () => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string; dependencies?: Record<string, string> }> };
  const installed = (JSON.parse(readFileSync(join(root, 'node_modules/bullmq/package.json'), 'utf8')) as { version: string }).version;
  expect({ pkg: pkg.dependencies['bullmq'], lockRoot: lock.packages['']?.dependencies?.['bullmq'], lock: lock.packages['node_modules/bullmq']?.version, installed }).toEqual({ pkg: BULLMQ_PIN, lockRoot: BULLMQ_PIN, lock: BULLMQ_PIN, installed: BULLMQ_PIN });
});

test("BullMQ's addStandardJob script, its includes and moveToFinished are the ones src/queues/inline-sync.ts copies", () => {
  const now = scriptHashes();
  const changed = [...new Set([...Object.keys(now), ...Object.keys(RECORDED)])].filter((f) => now[f] !== RECORDED[f]).sort();
  if (changed.length > 0) throw new Error(`${REREAD}. Changed, added or gone: ${changed.join(', ')}`);
  expect(Object.keys(now).length).toBeGreaterThan(5);
});

/** Jest runs the TypeScript sources as ESM, their types stripped by esbuild (type checking is `npm run typecheck`). */
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: {
    '^(\\.{1,2}/.*)\\.js$': '$1',
    // content-disposition 3 is ESM only; jest on Node 20 cannot require() it (see the file).
    '^content-disposition$': '<rootDir>/test/helpers/content-disposition.cjs',
  },
  // esbuild (tsx's, test/helpers/esbuild-transform.cjs) strips the types file by file. ts-jest did the same
  // (tsconfig.json's isolatedModules: no language service) with TypeScript's compiler: ~21 ms of CPU a file
  // against ~1.6 ms (the 660 files a fresh-clone CI transforms), plus ~0.8 s to load TypeScript in each
  // jest worker (22 of them in one CI, workers being replaced past 1 GB). A fresh clone's transform cache
  // is always cold (the cache is keyed by the checkout's path). 40 files (14 unit, 20 integration, 6
  // e2e), 3 workers, 2026-12-06, CPU of the whole process tree, three rounds on a loaded machine: ts-jest
  // cold 109–127 s, warm 81–92 s; esbuild cold 88–105 s, warm 79–105 s (docs/testing.md "CI time").
  transform: {
    '^.+\\.ts$': '<rootDir>/test/helpers/esbuild-transform.cjs',
  },
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  // StrykerJS sandboxes (a copy of the project): not modules of this one.
  modulePathIgnorePatterns: ['<rootDir>/.stryker-tmp/'],
  testTimeout: 60000,
  // Three: the suite mostly waits (redis-servers, simulators, ffmpeg, timers); during a fresh-clone CI on 2
  // cores with two workers the machine was about half busy (user+sys 21 min over 19.7 min of wall time).
  maxWorkers: 3,
  // A worker keeps every test file's module registry it ran (ESM under --experimental-vm-modules): in a
  // fresh-clone CI on 2 cores each of the three reached about 2 GB of RSS after 13 minutes, and the
  // garbage collector's work grew with it. A worker past 1 GB after a file is replaced by a fresh one.
  workerIdleMemoryLimit: '1GB',
  // Each file's heap in the report ("... (412 MB heap size)"): a CI log shows where memory goes.
  logHeapUsage: true,
};

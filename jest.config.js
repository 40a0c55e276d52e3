/** Jest runs the TypeScript sources as ESM through ts-jest (type checking is `npm run typecheck`). */
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: {
    '^(\\.{1,2}/.*)\\.js$': '$1',
    // content-disposition 3 is ESM only; jest on Node 20 cannot require() it (see the file).
    '^content-disposition$': '<rootDir>/test/helpers/content-disposition.cjs',
  },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, diagnostics: false }],
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

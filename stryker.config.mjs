/**
 * StrykerJS over the modules where a silent break costs money or data (issue 13; docs/testing.md).
 * One module per run (`npm run test:mutation -- <module>`, or every module in turn without one): each
 * names the files it mutates and the test files that guard them, so a run stays small on 2 cores.
 * Jest runs as in `npm test`: ESM (types stripped by esbuild, jest.config.js), hence --experimental-vm-modules for the runner.
 */
/* global URL, process */
import { readFileSync } from 'node:fs';

/** module → the files it mutates and the test files that guard them. */
const MODULES = JSON.parse(readFileSync(new URL('./test/mutation/modules.json', import.meta.url), 'utf8'));

const name = process.env.STRYKER_MODULE ?? 'money';
const mod = MODULES[name];
if (!mod) throw new Error(`unknown STRYKER_MODULE ${name}: one of ${Object.keys(MODULES).join(', ')}`);

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'jest',
  testRunnerNodeArgs: ['--experimental-vm-modules', '--no-warnings'],
  jest: {
    projectType: 'custom',
    configFile: 'jest.config.js',
    config: { testMatch: mod.tests.map((t) => `<rootDir>/${t}`) },
    enableFindRelatedTests: false,
  },
  mutate: mod.mutate,
  // perTest, except where a module says otherwise (modules.json): see docs/testing.md.
  coverageAnalysis: mod.coverageAnalysis ?? 'perTest',
  checkers: [],
  concurrency: 1,
  timeoutMS: 60_000,
  reporters: ['clear-text', 'progress', 'json'],
  jsonReporter: { fileName: `reports/mutation/${name}.json` },
  tempDirName: `.stryker-tmp/${name}`,
  cleanTempDir: true,
  ignorePatterns: ['.data', 'bench/results', 'reports', '.stryker-tmp'],
  thresholds: { high: 90, low: 85, break: null },
};

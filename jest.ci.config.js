/**
 * The whole suite in one jest run, as the CI runs it (`npm run test:ci`): every test file on one Redis
 * (jest.config.js, project "one redis"), and the files of `npm run test:cluster` once more on a
 * 3-master + 3-replica Redis Cluster (project "cluster": test/helpers/cluster-topology.ts sets
 * SYNDICAST_TEST_REDIS=cluster for each of its files). One worker pool for both: the cluster files
 * start while the others still run instead of after the last of them (a second jest run waited for
 * the first one's tail and paid its own start-up).
 */
import base from './jest.config.js';

/** The files `npm run test:cluster` runs on the cluster (docs/testing.md, "One Redis and a Redis Cluster"). */
export const CLUSTER_SUITES = [
  'test/e2e/mirror.youtube.test.ts',
  'test/e2e/mirror.property.all.test.ts',
  'test/e2e/mirror.crash.test.ts',
  'test/e2e/attribution.youtube.test.ts',
  'test/e2e/reconcile.whatnot.test.ts',
  'test/e2e/reconcile.scheduled.test.ts',
  'test/e2e/outbound.mirror.test.ts',
  'test/e2e/cluster.failover.test.ts',
  'test/e2e/cluster.redirect-failover.test.ts',
  'test/integration/links.test.ts',
  'test/integration/links.cluster.test.ts',
  'test/integration/ledger.cluster.test.ts',
  'test/integration/ledger.aggregates.property.test.ts',
  'test/integration/reconcile.stream.test.ts',
  'test/integration/api.auth.test.ts',
  'test/integration/intent-late-request.test.ts',
  'test/integration/intent-limiter.test.ts',
  'test/integration/intent-limiter.cluster.test.ts',
  'test/integration/sync.dispatch.test.ts',
  'test/integration/ingest.concurrent.test.ts',
  'test/integration/sync.cluster-reads.test.ts',
  'test/integration/sync.index-target-gone.test.ts',
  'test/integration/targets.delete-onplatform-race.test.ts',
  'test/integration/targets.delete-sync-race.test.ts',
  'test/integration/sync.report-held-deleting.test.ts',
  'test/integration/targets.delete-retried-create.test.ts',
  'test/integration/targets.recreate-same-id.test.ts',
];

// Options of the run (one pool, one report) at the top; the rest is each project's.
const { maxWorkers, workerIdleMemoryLimit, logHeapUsage, testTimeout, ...project } = base;

export default {
  maxWorkers,
  workerIdleMemoryLimit,
  logHeapUsage,
  testTimeout,
  projects: [
    { ...project, displayName: 'one redis' },
    {
      ...project,
      displayName: 'cluster',
      testMatch: CLUSTER_SUITES.map((f) => `<rootDir>/${f}`),
      setupFiles: ['<rootDir>/test/helpers/cluster-topology.ts'],
    },
  ],
};

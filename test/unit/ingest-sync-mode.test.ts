/**
 * INGEST_SYNC_JOBS on each topology (src/queues/inline-sync.ts ingestSyncMode): `inline` is taken on
 * one Redis only; on a Redis Cluster the ingest always writes the dispatch entry (the inline script
 * names keys of other slots, which a Cluster refuses: every show event would be a 503), and the start
 * says why (`ignored`). `dispatch` is `dispatch` everywhere.
 */
import { ingestSyncMode } from '../../src/queues/inline-sync.js';
import { loadConfig } from '../../src/config/config.js';

test('inline on one Redis, dispatch (ignored: logged) on a Cluster; dispatch everywhere when asked', () => {
  expect(ingestSyncMode('inline', false)).toEqual({ mode: 'inline', ignored: false });
  expect(ingestSyncMode('inline', true)).toEqual({ mode: 'dispatch', ignored: true });
  expect(ingestSyncMode('dispatch', false)).toEqual({ mode: 'dispatch', ignored: false });
  expect(ingestSyncMode('dispatch', true)).toEqual({ mode: 'dispatch', ignored: false });
});

test('INGEST_SYNC_JOBS defaults to inline and takes inline or dispatch only', () => {
  expect(loadConfig({}, '/nonexistent').ingestSyncJobs).toBe('inline');
  expect(loadConfig({ INGEST_SYNC_JOBS: 'dispatch' }, '/nonexistent').ingestSyncJobs).toBe('dispatch');
  expect(() => loadConfig({ INGEST_SYNC_JOBS: 'none' }, '/nonexistent')).toThrow(/INGEST_SYNC_JOBS/);
});

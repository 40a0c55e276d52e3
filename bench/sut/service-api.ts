/**
 * Syndicast's HTTP API as the production `api` role builds it (createRuntime + buildApp), minus
 * request logging and the queue dashboard, configured only through the environment the bench sets
 * (INGEST_SYNC_JOBS=inline|dispatch as in production). INGEST_BENCH_NO_SYNC=1 (bench only, never a
 * production setting): the ingest makes neither a sync job nor a dispatch entry (bench/ingest-ab.ts's
 * `none` variant, the upper bound: src/queues/inline-sync.ts).
 */
import { buildApp } from '../../src/api/app.js';
import { loadConfig } from '../../src/config/config.js';
import { createRuntime } from '../../src/main/runtime.js';
import { InlineSyncJobs } from '../../src/queues/inline-sync.js';
import { onStop, ready } from './child.js';

const config = loadConfig(process.env);
const rt = await createRuntime(config, 'api');
if (process.env['INGEST_BENCH_NO_SYNC'] === '1') rt.ingest.setSyncJobs('none', new InlineSyncJobs(rt.keys, config.syncShards));
const app = await buildApp(rt, { logger: false, dashboard: false });
const url = (await app.listen({ port: 0, host: '127.0.0.1' })).replace('localhost', '127.0.0.1');
onStop(async () => {
  await app.close();
  await rt.close();
});
ready({ url });

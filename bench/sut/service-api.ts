/**
 * Syndicast's HTTP API as the production `api` role builds it (createRuntime + buildApp), minus
 * request logging and the queue dashboard, configured only through the environment the bench sets.
 * INGEST_EXPERIMENT_SYNC (`inline` | `none`, bench only): the ingest experiment of
 * src/experimental/inline-sync.ts (sync jobs made by the ingest script, or none at all).
 */
import { buildApp } from '../../src/api/app.js';
import { loadConfig } from '../../src/config/config.js';
import { createRuntime } from '../../src/main/runtime.js';
import { InlineSyncJobs, type ExperimentalSyncMode } from '../../src/experimental/inline-sync.js';
import { onStop, ready } from './child.js';

const config = loadConfig(process.env);
const rt = await createRuntime(config, 'api');
const experiment = process.env['INGEST_EXPERIMENT_SYNC'] as ExperimentalSyncMode | undefined;
if (experiment) {
  if (!['dispatch', 'inline', 'none'].includes(experiment)) throw new Error(`INGEST_EXPERIMENT_SYNC=${experiment}: dispatch, inline or none`);
  rt.ingest.experimentalSync(experiment, new InlineSyncJobs(rt.keys, config.syncShards));
}
const app = await buildApp(rt, { logger: false, dashboard: false });
const url = (await app.listen({ port: 0, host: '127.0.0.1' })).replace('localhost', '127.0.0.1');
onStop(async () => {
  await app.close();
  await rt.close();
});
ready({ url });

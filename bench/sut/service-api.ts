/**
 * Syndicast's HTTP API as the production `api` role builds it (createRuntime + buildApp), minus
 * request logging and the queue dashboard, configured only through the environment the bench sets.
 */
import { buildApp } from '../../src/api/app.js';
import { loadConfig } from '../../src/config/config.js';
import { createRuntime } from '../../src/main/runtime.js';
import { onStop, ready } from './child.js';

const config = loadConfig(process.env);
const rt = await createRuntime(config, 'api');
const app = await buildApp(rt, { logger: false, dashboard: false });
const url = (await app.listen({ port: 0, host: '127.0.0.1' })).replace('localhost', '127.0.0.1');
onStop(async () => {
  await app.close();
  await rt.close();
});
ready({ url });

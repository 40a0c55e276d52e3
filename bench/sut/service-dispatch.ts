/**
 * Syndicast's sync dispatcher alone (the `dispatch` role; every production `worker` process runs
 * one): turns the accepted events' dispatch entries into sync jobs. Configured only through the
 * environment the bench sets.
 */
import { loadConfig } from '../../src/config/config.js';
import { startRoles } from '../../src/main/process.js';
import { onStop, ready } from './child.js';

const started = await startRoles(['dispatch'], loadConfig(process.env), { logger: false });
onStop(() => started.stop());
ready({});

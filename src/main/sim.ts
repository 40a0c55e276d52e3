/**
 * `npm run sim`: the platform simulators alone (README "Platforms") on SIM_PORT (default 4100).
 * Settings (SIM_PORT, SIM_HOST, SIM_LOG, SIM_RTMP_PORT) are read by src/config like everything else.
 */
import { ConfigError, loadSimConfig } from '../config/config.js';
import { HTTP_CONNECTION_SHARE, limitHttpServer } from '../lib/connection-limits.js';
import { startSimulators, type StartedSimulators } from '../simulators/sim.server.js';
import { listenFailure } from './process.js';

let simConfig;
try {
  simConfig = loadSimConfig();
} catch (err) {
  console.error(err instanceof ConfigError ? err.message : err);
  process.exit(1);
}
const { port, host } = simConfig;
let server: StartedSimulators;
try {
  server = await startSimulators({ port, host, logger: simConfig.log, rtmpPort: simConfig.rtmpPort });
} catch (err) {
  // A port in use, a SIM_HOST that is not this machine's: the paragraph `npm start` prints for its
  // own ports, naming the setting (it was a stack trace). The RTMP sinks listen first.
  const rtmp = (err as { port?: unknown }).port === simConfig.rtmpPort && simConfig.rtmpPort !== port;
  const failure = listenFailure(err, {
    who: 'The simulators',
    hostSetting: 'SIM_HOST',
    host,
    ...(rtmp ? { setting: 'SIM_RTMP_PORT', port: simConfig.rtmpPort, serves: 'their RTMP sinks' } : { setting: 'SIM_PORT', port, serves: 'their HTTP API' }),
  });
  if (!failure) throw err;
  process.stderr.write(`\n${failure.message}\n\n`);
  process.exit(1);
}
// Its own process: the API's bounds and share (src/lib/connection-limits.ts), so a flood of silent
// connections cannot take the descriptors its RTMP sinks need.
limitHttpServer(server.app.server, HTTP_CONNECTION_SHARE);
const platforms = [...server.simulators.keys()];
console.log(`Platform simulators listening on ${server.url}, RTMP sinks on ${server.rtmpUrl}`);
for (const p of platforms) console.log(`  ${p}: baseUrl ${server.url}/${p}   control: ${server.url}/_sim/${p}/...`);

let closing = false;
async function shutdown(signal: string): Promise<void> {
  if (closing) return;
  closing = true;
  console.log(`${signal}: closing simulators`);
  const closed = server.close();
  // A client that never finishes its request does not hold the shutdown.
  server.app.server.closeAllConnections();
  await closed;
  process.exit(0);
}
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.once(sig, () => {
    shutdown(sig).catch((err: unknown) => {
      console.error(err);
      process.exit(1);
    });
  });
}

/* eslint-disable no-restricted-properties */
/**
 * `npm run sim`: the platform simulators alone (CONTRACT §9) on SIM_PORT (default 4100).
 * The only simulator file that reads the environment: the simulators are a dev/test tool, not part
 * of the service's configuration in src/config.
 */
import { startSimulators } from '../simulators/sim.server.js';

const port = Number(process.env.SIM_PORT ?? 4100);
const host = process.env.SIM_HOST ?? '127.0.0.1';
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`SIM_PORT must be a port number, got ${process.env.SIM_PORT ?? ''}`);
  process.exit(1);
}

const server = await startSimulators({ port, host, logger: process.env.SIM_LOG === '1' });
const platforms = [...server.simulators.keys()];
console.log(`Platform simulators listening on ${server.url}`);
for (const p of platforms) console.log(`  ${p}: baseUrl ${server.url}/${p}   control: ${server.url}/_sim/${p}/...`);

let closing = false;
async function shutdown(signal: string): Promise<void> {
  if (closing) return;
  closing = true;
  console.log(`${signal}: closing simulators`);
  await server.close();
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

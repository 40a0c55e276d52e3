/**
 * What every entry (`npm start`, `start:api`, workers/*) does first: catch the stop signals (a stop
 * during the start exits 0, main in process.ts), then read the configuration before the service's
 * modules load, so a bad setting is reported in well under a second rather than after fastify,
 * BullMQ and the rest have loaded (about 2.3 s on 2 cores), and only then load and start the roles.
 */
import { ConfigError, loadConfig, type Config } from '../config/config.js';
import type { Role } from './process.js';
import { catchStopSignals } from './stop-signals.js';

/** The configuration, or the configuration message on stderr and exit 1. */
export function configOrExit(): Config {
  try {
    return loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}

export async function runRoles(roles: Role[]): Promise<void> {
  const stop = catchStopSignals();
  const config = configOrExit();
  const { main } = await import('./process.js');
  await main(roles, stop, config);
}

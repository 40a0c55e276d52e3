/** `npm start`: API + workers + scheduler + video relay (with its ingest edge) in one process. */
import { catchStopSignals } from './stop-signals.js';

// Stop signals handled before the rest loads: a stop during the start exits 0 (main, process.ts).
const stop = catchStopSignals();
const { main } = await import('./process.js');

await main(['api', 'worker', 'scheduler', 'relay'], stop);

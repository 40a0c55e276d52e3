/** Production role: sync workers for every platform queue (scale by running more of these). */
import { catchStopSignals } from '../src/main/stop-signals.js';

// Stop signals handled before the rest loads: a stop during the start exits 0 (main, process.ts).
const stop = catchStopSignals();
const { main } = await import('../src/main/process.js');

await main(['worker'], stop);

/** Production role: scheduled jobs (mirror sweep; reconciliation). Safe to run more than one. */
import { catchStopSignals } from '../src/main/stop-signals.js';

// Stop signals handled before the rest loads: a stop during the start exits 0 (main, process.ts).
const stop = catchStopSignals();
const { main } = await import('../src/main/process.js');

await main(['scheduler'], stop);

/**
 * A process whose shutdown never ends, for test/integration/stop-signals.force-exit.test.ts: the stop
 * signals handled by onStopSignals (src/main/stop-signals.ts), whose `start` only says when it began.
 */
import { onStopSignals } from '../../src/main/stop-signals.js';

onStopSignals({
  start: (signal) => process.stdout.write(`stopping on ${signal} at ${Date.now()}\n`),
  repeated: (signal) => process.stdout.write(`repeated ${signal}\n`),
});
setInterval(() => undefined, 60_000); // the shutdown that hangs
process.stdout.write('ready\n');

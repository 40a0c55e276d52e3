/**
 * Production role: the video relay (README "Video relay"): the embedded RTMP ingest edge (unless RELAY_EDGE=none)
 * and the supervised ffmpeg per destination of every live show this process holds the lease of.
 * Scale by running more of these; each show is relayed by one of them at a time.
 */
import { catchStopSignals } from '../src/main/stop-signals.js';

// Stop signals handled before the rest loads: a stop during the start exits 0 (main, process.ts).
const stop = catchStopSignals();
const { main } = await import('../src/main/process.js');

await main(['relay'], stop);

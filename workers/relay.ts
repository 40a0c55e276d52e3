/**
 * Production role: the video relay (README "Video relay"): the embedded RTMP ingest edge (unless RELAY_EDGE=none)
 * and the supervised ffmpeg per destination of every live show this process holds the lease of.
 * Scale by running more of these; each show is relayed by one of them at a time.
 */
import { runRoles } from '../src/main/entry.js';

// Stop signals caught, then the configuration read, before the rest loads (entry.ts).
await runRoles(['relay']);

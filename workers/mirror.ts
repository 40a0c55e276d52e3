/** Production role: sync workers for every platform queue (scale by running more of these). */
import { runRoles } from '../src/main/entry.js';

// Stop signals caught, then the configuration read, before the rest loads (entry.ts).
await runRoles(['worker']);

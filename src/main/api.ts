/** Production role: the HTTP API only. */
import { runRoles } from './entry.js';

// Stop signals caught, then the configuration read, before the rest loads (entry.ts).
await runRoles(['api']);

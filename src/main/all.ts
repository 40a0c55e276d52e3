/** `npm start`: API + workers + scheduler + video relay (with its ingest edge) in one process. */
import { runRoles } from './entry.js';

// Stop signals caught, then the configuration read, before the rest loads (entry.ts).
await runRoles(['api', 'worker', 'scheduler', 'relay']);

/** Production role: scheduled jobs (mirror sweep; reconciliation). Safe to run more than one. */
import { runRoles } from '../src/main/entry.js';

// Stop signals caught, then the configuration read, before the rest loads (entry.ts).
await runRoles(['scheduler']);

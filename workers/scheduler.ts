/** Production role: scheduled jobs (mirror sweep; reconciliation). Safe to run more than one. */
import { main } from '../src/main/process.js';

await main(['scheduler']);

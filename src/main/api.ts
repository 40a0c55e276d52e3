/** Production role: the HTTP API only. */
import { main } from './process.js';

await main(['api']);

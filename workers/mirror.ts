/** Production role: sync workers for every platform queue (scale by running more of these). */
import { main } from '../src/main/process.js';

await main(['worker']);

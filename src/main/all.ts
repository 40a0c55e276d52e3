/** `npm start`: API + workers + scheduler + video relay (with its ingest edge) in one process. */
import { main } from './process.js';

await main(['api', 'worker', 'scheduler', 'relay']);

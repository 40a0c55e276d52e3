/** `npm start`: API + workers + scheduler in one process. */
import { main } from './process.js';

await main(['api', 'worker', 'scheduler']);

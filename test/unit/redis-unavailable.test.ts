/** Which Redis errors mean "storage unavailable" (→ 503 with Retry-After) rather than a bug (→ 500). */
import { isRedisUnavailable } from '../../src/store/redis.js';

test.each([
  'Connection is closed.',
  "Stream isn't writeable and enableOfflineQueue options is false",
  'Command timed out',
  'CLUSTERDOWN The cluster is down',
  'NOREPLICAS Not enough good replicas to write.',
  // Writes refused because Redis cannot persist them (a failed snapshot, an AOF on a full disk).
  'MISCONF Redis is configured to save RDB snapshots, but it is currently not able to persist on disk.',
  'MISCONF Errors writing to the AOF file: No space left on device',
  // A script past busy-reply-threshold (lua-time-limit): every other command is refused until it ends.
  'BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.',
  'BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.',
  'LOADING Redis is loading the dataset in memory',
  'MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to \'no\'.',
  'TRYAGAIN Multiple keys request during rehashing of slot',
  "Cluster isn't ready and enableOfflineQueue options is false",
  // A master failover on a Cluster: ioredis gives up following MOVED while slots move (never executed).
  'Too many Cluster redirections. Last error: ReplyError: MOVED 4491 127.0.0.1:37843',
])('%s is a 503', (message) => {
  expect(isRedisUnavailable(new Error(message))).toBe(true);
});

test.each([
  'WRONGTYPE Operation against a key holding the wrong kind of value',
  'ERR Error running script',
  // Answers about the command, not a busy Redis.
  'BUSYGROUP Consumer Group name already exists',
  'BUSYKEY Target key name already exists.',
  "Cannot read properties of undefined (reading 'x')",
  // Our own errors that merely contain a code's letters are bugs, not an unavailable Redis.
  'Error loading partner settings: unexpected token',
  'target misconfigured: baseUrl missing',
  'reloading the readonly cache failed',
])('%s is a bug (500)', (message) => {
  expect(isRedisUnavailable(new Error(message))).toBe(false);
});

/** Which Redis errors mean "storage unavailable" (→ 503 with Retry-After) rather than a bug (→ 500). */
import { isRedisUnavailable } from '../../src/store/redis.js';

test.each([
  'Connection is closed.',
  "Stream isn't writeable and enableOfflineQueue options is false",
  'Command timed out',
  'CLUSTERDOWN The cluster is down',
  'NOREPLICAS Not enough good replicas to write.',
  "Cluster isn't ready and enableOfflineQueue options is false",
  // A master failover on a Cluster: ioredis gives up following MOVED while slots move (never executed).
  'Too many Cluster redirections. Last error: ReplyError: MOVED 4491 127.0.0.1:37843',
])('%s is a 503', (message) => {
  expect(isRedisUnavailable(new Error(message))).toBe(true);
});

test.each(['WRONGTYPE Operation against a key holding the wrong kind of value', 'ERR Error running script', "Cannot read properties of undefined (reading 'x')"])('%s is a bug (500)', (message) => {
  expect(isRedisUnavailable(new Error(message))).toBe(false);
});

/**
 * REDIS_CLUSTER_NODES: a seed that is not host:port stops the start with the configuration message
 * naming the variable and the seed. Found by starting `npm start` with REDIS_CLUSTER_NODES=127.0.0.1:abc,
 * 127.0.0.1:99999 and 127.0.0.1:7000:1: the first two were seeds with port NaN or out of range (the
 * start waited its 15 s, logging, and said only that no node answered), the third silently dropped
 * `:1`; an IPv6 seed ([::1]:7000) was split at its first colon into host "[" and never reached.
 */
import { clusterSeedList, ConfigError, loadConfig } from '../../src/config/config.js';

const load = (env: Record<string, string>) => loadConfig(env, '/nonexistent');

test('a seed that is no host:port is refused at start, naming the variable and the seed', () => {
  // The last five: brackets around no IPv6 address, a host with characters no host name has.
  for (const bad of ['127.0.0.1:abc', '127.0.0.1:99999', '127.0.0.1:0', '127.0.0.1:7000:1', '::1:7000', ':7000', '10.0.0.1:7000,10.0.0.2:', '[::1', 'a b:7000', ',', '[:]:7000', '[.]', '[1]:7000', 'user@h:7000', 'h/x:7000']) {
    let message = '';
    try {
      load({ REDIS_CLUSTER_NODES: bad });
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      message = (e as Error).message;
    }
    expect({ bad, line: /^ {2}REDIS_CLUSTER_NODES: .*$/m.exec(message)?.[0] }).toEqual({ bad, line: expect.stringMatching(/host:port|names no seed|port must be 1 to 65535|IPv6 address \(\[::1\]:7000\)|host must be a host name/) });
  }
});

test('seeds as the Cluster client gets them: host:port, a host alone (6379), IPv6 in brackets; empty entries left out', () => {
  const nodes = ' 10.0.0.1:7000, redis-b ,[::1]:7002,,[fd00::5]:7003,';
  expect(load({ REDIS_CLUSTER_NODES: nodes }).redisClusterNodes).toBe(nodes.trim());
  expect(clusterSeedList(nodes)).toEqual([
    { host: '10.0.0.1', port: 7000 },
    { host: 'redis-b', port: 6379 },
    { host: '::1', port: 7002 },
    { host: 'fd00::5', port: 7003 },
  ]);
});

/**
 * REDIS_CLUSTER_NODES: a seed that is not host:port stops the start with the configuration message
 * naming the variable and the seed. Found by starting `npm start` with REDIS_CLUSTER_NODES=127.0.0.1:abc,
 * 127.0.0.1:99999 and 127.0.0.1:7000:1: the first two were seeds with port NaN or out of range (the
 * start waited its 15 s, logging, and said only that no node answered), the third silently dropped
 * `:1`; an IPv6 seed ([::1]:7000) was split at its first colon into host "[" and never reached.
 */
import { clusterConnection, clusterSeedList, ConfigError, loadConfig, printableClusterNodes } from '../../src/config/config.js';

const load = (env: Record<string, string>) => loadConfig(env, '/nonexistent');

/** The configuration message REDIS_CLUSTER_NODES=`nodes` stops the start with (a ConfigError); '' when it loads. */
function refusal(nodes: string): string {
  try {
    load({ REDIS_CLUSTER_NODES: nodes });
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  return '';
}

test('a seed that is no host:port is refused at start, naming the variable and the seed', () => {
  // The last five: brackets around no IPv6 address, a host with characters no host name has.
  for (const bad of ['127.0.0.1:abc', '127.0.0.1:99999', '127.0.0.1:0', '127.0.0.1:7000:1', '::1:7000', ':7000', '10.0.0.1:7000,10.0.0.2:', '[::1', 'a b:7000', ',', '[:]:7000', '[.]', '[1]:7000', 'user@h:7000', 'h/x:7000']) {
    const message = refusal(bad);
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

/**
 * Nodes that require a password (ElastiCache/MemoryDB with AUTH, Redis Enterprise, requirepass or ACL
 * users): each seed gives it as REDIS_URL does, redis://user:password@host:port (redis://:password@…
 * for the default user), percent-decoded; the Cluster client sends it to every node. Before,
 * REDIS_CLUSTER_NODES took no password (a `redis://` seed was refused). A mistake is said without the
 * password, however the entry is wrong.
 */
test('seeds with a user and password (redis://user:password@host:port), as REDIS_URL gives them', () => {
  const nodes = 'redis://app:s%2Cec%40ret%2Fx@10.0.0.1:7000, redis://app:s%2Cec%40ret%2Fx@[::1]:7001/,redis://app:s%2Cec%40ret%2Fx@redis-c';
  expect(load({ REDIS_CLUSTER_NODES: nodes }).redisClusterNodes).toBe(nodes);
  expect(clusterConnection(nodes)).toEqual({
    seeds: [
      { host: '10.0.0.1', port: 7000 },
      { host: '::1', port: 7001 },
      { host: 'redis-c', port: 6379 },
    ],
    username: 'app',
    password: 's,ec@ret/x',
  });
  // The default user: no username (ioredis then sends AUTH <password>); an '@' in the password, unencoded, too.
  expect(clusterConnection('redis://:p@ss@127.0.0.1:7000,redis://:p@ss@127.0.0.1:7001')).toEqual({ seeds: [{ host: '127.0.0.1', port: 7000 }, { host: '127.0.0.1', port: 7001 }], password: 'p@ss' });
  // No password: as before.
  expect(clusterConnection('10.0.0.1:7000')).toEqual({ seeds: [{ host: '10.0.0.1', port: 7000 }] });
});

test('a seed with a password that cannot be used is refused, and no message names the password', () => {
  const SECRET = 'Sup3rS3cret';
  const cases: [string, RegExp][] = [
    [`redis://app:${SECRET}@10.0.0.1:7000,redis://app:other@10.0.0.2:7000`, /every seed must give the same user and password/],
    [`redis://:${SECRET}@10.0.0.1:7000,10.0.0.2:7000`, /every seed must give the same user and password \(or every seed none\)/],
    [`redis://bob:${SECRET}@10.0.0.1:7000,redis://alice:${SECRET}@10.0.0.2:7000`, /every seed must give the same user and password/],
    [`rediss://app:${SECRET}@10.0.0.1:7000`, /"rediss:\/\/app:\*\*\*@10\.0\.0\.1:7000": each seed must be .*TLS, rediss:\/\/, is not supported/],
    [`redis://app:${SECRET}@10.0.0.1:7000/2`, /"redis:\/\/app:\*\*\*@10\.0\.0\.1:7000\/2": a seed has no path, database or query/],
    [`redis://app:${SECRET}@10.0.0.1:99999`, /"redis:\/\/app:\*\*\*@10\.0\.0\.1:99999": the port must be 1 to 65535/],
    [`redis://${SECRET}@10.0.0.1:7000`, /"redis:\/\/\*\*\*@10\.0\.0\.1:7000": give the password after a ':'/],
    [`redis://app:@10.0.0.1:7000`, /give the password after a ':'/],
    [`redis://app:${SECRET}%zz@10.0.0.1:7000`, /"redis:\/\/app:\*\*\*@10\.0\.0\.1:7000": the user or password has a '%'/],
    [`app:${SECRET}@10.0.0.1:7000`, /"\*\*\*@10\.0\.0\.1:7000": each seed must be host:port, or redis:\/\/user:password@host:port/],
    // An unencoded ',' splits the password: the first half is no seed, the middle names its place only.
    [`redis://app:Sup3r,S3cret@10.0.0.1:7000`, /"redis:\/\/\*\*\*": each seed must be .*a ',' in a password is written %2C/],
    [`redis://app:Sup,3r S3,cret@10.0.0.1:7000`, /seed 2 is no seed: each seed must be .*%2C/],
  ];
  for (const [nodes, said] of cases) {
    const message = refusal(nodes);
    expect({ nodes, message }).toEqual({ nodes, message: expect.stringMatching(said) });
    for (const part of [SECRET, 'Sup3r', 'S3cret', '3r S3']) expect({ nodes, message }).toEqual({ nodes, message: expect.not.stringContaining(part) });
    // clusterSeedList, for a value no configuration checked (the Cluster client's own), says it the same way.
    expect(() => clusterSeedList(nodes)).toThrow(ConfigError);
    try {
      clusterSeedList(nodes);
    } catch (e) {
      for (const part of [SECRET, 'Sup3r', 'S3cret']) expect((e as Error).message).not.toContain(part);
    }
  }
});

test('REDIS_CLUSTER_NODES as it is printed (startup messages): every password hidden, the rest as given', () => {
  expect(printableClusterNodes('redis://app:pw1@10.0.0.1:7000, redis://:pw1@[::1]:7001,10.0.0.3:7000')).toBe('redis://app:***@10.0.0.1:7000,redis://:***@[::1]:7001,10.0.0.3:7000');
  expect(printableClusterNodes('redis://justapassword@h:7000,redis://app:a,b@h:7001')).toBe('redis://***@h:7000,redis://***,***@h:7001');
  expect(printableClusterNodes('10.0.0.1:7000,redis://h:7001')).toBe('10.0.0.1:7000,redis://h:7001');
});

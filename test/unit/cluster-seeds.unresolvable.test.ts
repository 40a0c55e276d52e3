/**
 * unresolvableClusterSeeds (src/store/redis.ts): the start gives up at once only when no seed of
 * REDIS_CLUSTER_NODES can be reached at all because none of their names exists. A seed that is an IP
 * address, or whose name resolves, leaves the rest to the Cluster client's ready wait (it learns the
 * other nodes from any one seed). `.invalid` names never resolve (RFC 6761): `look` answers them so
 * without asking the machine's DNS server (tests use loopback only); other names go to the real
 * resolver (`localhost` and IP addresses resolve on the machine).
 */
import { lookup } from 'node:dns/promises';
import { unresolvableClusterSeeds } from '../../src/store/redis.js';

const look = (host: string): Promise<unknown> =>
  host.endsWith('.invalid') ? Promise.reject(Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' })) : lookup(host);

test('every name unknown: the problem names each once', async () => {
  expect(await unresolvableClusterSeeds('a.invalid:7000, a.invalid:7001,b.invalid', 2, 10, look)).toMatch(/^no seed's host name resolves: "a\.invalid" \(getaddrinfo ENOTFOUND a\.invalid\), "b\.invalid" \(getaddrinfo ENOTFOUND b\.invalid\), on each of 2 looks/);
});

test('one seed that resolves or is an IP address: no problem (left to the ready wait)', async () => {
  for (const nodes of ['a.invalid:7000,localhost:7001', 'a.invalid:7000,127.0.0.1:7001', '[::1]:7000', 'redis://:pw@a.invalid:7000,redis://:pw@localhost:7001']) {
    expect({ nodes, problem: await unresolvableClusterSeeds(nodes, 2, 10, look) }).toEqual({ nodes, problem: null });
  }
});

test('a look-up that fails otherwise (EAI_AGAIN: the DNS may answer later) is left to the ready wait', async () => {
  const again = (): Promise<unknown> => Promise.reject(Object.assign(new Error('getaddrinfo EAI_AGAIN x'), { code: 'EAI_AGAIN' }));
  expect(await unresolvableClusterSeeds('a.invalid:7000', 2, 10, again)).toBeNull();
});

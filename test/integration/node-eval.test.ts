/**
 * evalOnNode (src/store/node-batch.ts): the one way the service runs a Lua script on one node (a
 * Cluster master's connection, or the one Redis): the redirect's click batches, the product reads,
 * the click lookups, the ledger's steps. One EVALSHA in the common case; a NOSCRIPT reply (a fresh or
 * restarted node, a failover to a replica that never ran the script, SCRIPT FLUSH) gets one EVAL,
 * which puts the script back in the node's cache. What went on the wire is read from the server's
 * own command counts (INFO commandstats). Real redis-server.
 */
import { Redis } from 'ioredis';
import { evalOnNode, nodeScript } from '../../src/store/node-batch.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';

let server: TestRedis;
let node: Redis;

/** Echoes its key and arguments and counts its runs in the key: {KEYS[1], ARGV..., count}. */
const ECHO = nodeScript(`
local out = {KEYS[1]}
for i = 1, #ARGV do out[#out + 1] = ARGV[i] end
out[#out + 1] = redis.call('INCR', KEYS[1])
return out
`);
const FAILS = nodeScript(`return redis.error_reply('ERR refused by the script')`);

beforeAll(async () => {
  server = await startRedis();
  node = new Redis(server.url);
});
afterAll(async () => {
  await node.quit();
  await server.destroy();
});

/** EVALSHA and EVAL commands the server has run (a NOSCRIPT reply counts as a run EVALSHA). */
async function sent(): Promise<{ evalsha: number; eval: number }> {
  const stats = await node.info('commandstats');
  const calls = (name: string): number => Number(new RegExp(`^cmdstat_${name}:calls=(\\d+)`, 'm').exec(stats)?.[1] ?? 0);
  return { evalsha: calls('evalsha'), eval: calls('eval') };
}

async function scriptCached(sha: string): Promise<boolean> {
  const [exists] = (await node.script('EXISTS', sha)) as number[];
  return exists === 1;
}

test('on a fresh server the first call is answered (NOSCRIPT, then one EVAL that caches it); the next is one EVALSHA', async () => {
  expect(await scriptCached(ECHO.sha)).toBe(false);
  const before = await sent();
  // the key and the arguments go as given: a number as its decimal text, a multi-byte string whole
  await expect(evalOnNode(node, ECHO, 1, ['k:fresh', 'a', 7, 'é€'])).resolves.toEqual(['k:fresh', 'a', '7', 'é€', 1]);
  expect(await sent()).toEqual({ evalsha: before.evalsha + 1, eval: before.eval + 1 });
  expect(await scriptCached(ECHO.sha)).toBe(true);

  await expect(evalOnNode(node, ECHO, 1, ['k:fresh', 'b'])).resolves.toEqual(['k:fresh', 'b', 2]);
  expect(await sent()).toEqual({ evalsha: before.evalsha + 2, eval: before.eval + 1 });
});

test('after SCRIPT FLUSH on the node the next call still succeeds (NOSCRIPT recovered), and puts the script back', async () => {
  await evalOnNode(node, ECHO, 1, ['k:flush']); // cached now
  await node.script('FLUSH');
  expect(await scriptCached(ECHO.sha)).toBe(false);
  const before = await sent();
  await expect(evalOnNode(node, ECHO, 1, ['k:flush', 'z'])).resolves.toEqual(['k:flush', 'z', 2]);
  expect(await sent()).toEqual({ evalsha: before.evalsha + 1, eval: before.eval + 1 });
  expect(await scriptCached(ECHO.sha)).toBe(true);

  await expect(evalOnNode(node, ECHO, 1, ['k:flush'])).resolves.toEqual(['k:flush', 3]);
  expect(await sent()).toEqual({ evalsha: before.evalsha + 2, eval: before.eval + 1 });
});

test("any other error is the caller's, with no retry", async () => {
  await evalOnNode(node, FAILS, 0, []).catch(() => undefined); // cached by the first call's EVAL
  const before = await sent();
  await expect(evalOnNode(node, FAILS, 0, [])).rejects.toThrow('refused by the script');
  expect(await sent()).toEqual({ evalsha: before.evalsha + 1, eval: before.eval });
});

test('`behind` goes right behind the EVALSHA and the reply waits for it; after a NOSCRIPT retry it goes again, after the EVAL', async () => {
  await node.script('FLUSH');
  const order: string[] = [];
  const behind = (n: Redis): Promise<unknown> => n.call('INCR', 'k:behind').then((v) => order.push(`behind ${String(v)}`));
  // fresh: EVALSHA (NOSCRIPT), behind, EVAL, behind again once the EVAL has answered
  await evalOnNode(node, ECHO, 1, ['k:b1'], behind).then(() => order.push('reply'));
  expect(order).toEqual(['behind 1', 'behind 2', 'reply']);

  order.length = 0;
  const before = await sent();
  await evalOnNode(node, ECHO, 1, ['k:b1'], behind).then(() => order.push('reply'));
  expect(order).toEqual(['behind 3', 'reply']);
  expect(await sent()).toEqual({ evalsha: before.evalsha + 1, eval: before.eval });

  // nothing sent behind: the reply as it comes
  await expect(evalOnNode(node, ECHO, 1, ['k:b1'], () => undefined)).resolves.toEqual(['k:b1', 3]);
  // what is sent behind fails: so does the call
  await expect(evalOnNode(node, ECHO, 1, ['k:b1'], (n) => n.call('NO-SUCH-COMMAND'))).rejects.toThrow(/unknown command/i);
});

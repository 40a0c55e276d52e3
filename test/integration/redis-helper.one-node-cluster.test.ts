/**
 * test/helpers/redis-cluster.ts startOneNodeCluster: a port taken between its pick and redis-server's
 * bind (another test file's server) failed the start, and the helper threw with its temp dir left
 * behind (and its redis-server, had it started). It now starts again on new ports, as startCluster
 * does, and a start that fails for good leaves nothing behind. The taken port: a plain redis-server's.
 */
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { startOneNodeCluster } from '../helpers/redis-cluster.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { testPort } from '../helpers/ports.js';

let taken: TestRedis;
beforeAll(async () => {
  taken = await startRedis();
});
afterAll(async () => {
  await taken?.destroy();
});

const ownDirs = (): string[] => readdirSync(tmpdir()).filter((d) => d.startsWith('syndicast-cluster1-'));

test('a port taken at the first start: started on new ports', async () => {
  const picks = [taken.port];
  const one = await startOneNodeCluster(async () => picks.shift() ?? testPort());
  await one.destroy();
  expect({ picksLeft: picks.length, samePort: one.port === taken.port }).toEqual({ picksLeft: 0, samePort: false });
});

test('a port taken at every start: rejected, its temp dir gone', async () => {
  const before = new Set(ownDirs());
  let n = 0;
  // Every attempt's node port is the taken one (its bus port a free one).
  const outcome = await startOneNodeCluster(async () => (n++ % 2 === 0 ? taken.port : testPort())).then(
    async (one) => {
      await one.destroy();
      return 'started';
    },
    (err: Error) => err.message,
  );
  expect({ outcome, attempts: n / 2, left: ownDirs().filter((d) => !before.has(d)) }).toEqual({ outcome: expect.stringContaining(String(taken.port)), attempts: 3, left: [] });
});

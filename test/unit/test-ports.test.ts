/**
 * The ports tests give the processes they start (test/helpers/ports.ts). They were freePort()'s: a
 * listen(0) closed at once, so until the child bound it (seconds for a tsx child on a busy 2-core CI)
 * any other jest worker's listen(0) could take it — Linux picks those at random among about 7,000
 * ports, and the suite makes several a second. Now they lie below the OS's ephemeral range (no
 * listen(0) lands there), in a block per jest worker (no two files running at once share one), and
 * one file never gets the same port twice.
 */
import { createServer } from 'node:net';
import { ephemeralRange, PORT_BLOCKS, portBlock, testPort } from '../helpers/ports.js';

const listenZero = (): Promise<number> =>
  new Promise((resolve) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });

test('a port given to a test lies outside the range listen(0) takes ports from, and no listen(0) gives it', async () => {
  const { low, high } = ephemeralRange();
  const given = [];
  for (let i = 0; i < 40; i++) given.push(await testPort());
  expect(given.filter((p) => p >= low && p <= high)).toEqual([]);
  const byOs = new Set<number>();
  for (let i = 0; i < 200; i++) byOs.add(await listenZero());
  expect(given.filter((p) => byOs.has(p))).toEqual([]);
});

test('one file gets a port once: 100 ports in a row are 100 ports, each free when given', async () => {
  const given = [];
  for (let i = 0; i < 100; i++) given.push(await testPort());
  expect(new Set(given).size).toBe(100);
});

test("jest workers' blocks do not overlap and all lie below the ephemeral range", () => {
  const low = 32768;
  const blocks = Array.from({ length: PORT_BLOCKS }, (_, i) => portBlock(i + 1, low)!);
  const ports = blocks.flatMap((b) => Array.from({ length: b.size }, (_, i) => b.first + i));
  expect(new Set(ports).size).toBe(ports.length);
  expect(Math.max(...ports)).toBeLessThan(low);
  expect(Math.min(...ports)).toBeGreaterThanOrEqual(1024);
  expect(blocks[0]!.size).toBeGreaterThanOrEqual(300); // room for a file's redis-servers, services and edges
  expect(portBlock(PORT_BLOCKS + 1, low)).toEqual(blocks[0]); // more workers than blocks: they wrap
  expect(portBlock(1, 2000)).toBeUndefined(); // no room below such a range: testPort falls back to freePort
});

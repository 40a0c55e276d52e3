/**
 * Ports for what a test starts later on a port it names (a child process's PORT, an edge's RTMP port,
 * a redis-server) or for an address that must stay closed (`redis://127.0.0.1:{port}` nobody answers).
 *
 * freePort() (src/lib/net.ts) asks the OS: a listen(0) that is closed again at once. The port is then
 * free for anyone's listen(0) until our child binds it, seconds later for a tsx child on a busy CI.
 * Linux hands out listen(0) ports at random from one set (about 7,000 odd ports, the lower half of
 * ip_local_port_range, for sockets with SO_REUSEADDR as Node's and redis-server's), and the other jest
 * workers' files call listen(0) all the time (every service, simulator, redis-server and test server):
 * each such call in the window took our port once in about 7,000. Our child then failed with
 * EADDRINUSE, or, worse, the test's `/health/ready` was answered by another file's service, and a
 * "closed" Redis address was suddenly answered.
 *
 * Here: ports below the OS's ephemeral range, where no listen(0) or outgoing connection ever lands;
 * each jest worker (JEST_WORKER_ID) has a block of its own, so two files that run at once never get
 * the same port; in one file, ports are not given twice (until the block wraps); and every port is
 * checked free (a listen and a close) when given, which skips one an earlier file left in use.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { freePort } from '../../src/lib/net.js';

/** Blocks the region is cut into: more than jest's workers (jest.config.js: 3). */
export const PORT_BLOCKS = 8;
/** Ports below the ephemeral range used: 30000–32767 with Linux's default range (32768–60999). */
const REGION = 2768;

/** The OS's ephemeral range (listen(0) and outgoing connections take theirs in it). */
export function ephemeralRange(): { low: number; high: number } {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (low && high) return { low, high };
  } catch {
    // not Linux: assume its default
  }
  return { low: 32768, high: 60999 };
}

/** The ports of jest worker `workerId` (1, 2, …; any other number wraps): a block of its own below the ephemeral range. */
export function portBlock(workerId: number, low = ephemeralRange().low): { first: number; size: number } | undefined {
  const start = low - REGION;
  if (start < 1024) return undefined; // an ephemeral range that starts this low leaves no room below it
  const size = Math.floor(REGION / PORT_BLOCKS);
  const slot = (((workerId - 1) % PORT_BLOCKS) + PORT_BLOCKS) % PORT_BLOCKS;
  return { first: start + slot * size, size };
}

/**
 * The blocks a jest run started by a test (SYNDICAST_TEST_PORT_BLOCKS_AFTER=3: its workers 1, 2 take
 * blocks 4, 5) skips: its workers have JEST_WORKER_IDs of their own, the outer run's ones again.
 */
const skipped = Number(process.env['SYNDICAST_TEST_PORT_BLOCKS_AFTER'] ?? 0) || 0;
const workerId = skipped + Number(process.env['JEST_WORKER_ID'] ?? (process.pid % PORT_BLOCKS) + 1);
const block = portBlock(Number.isInteger(workerId) ? workerId : 1);
/** The next port of the block to try (a random start: files that follow each other in a worker do not begin at the same port). */
let next = block ? Math.floor(Math.random() * block.size) : 0;

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A port free now that no other jest worker's file and no listen(0) takes before the caller binds it. */
export async function testPort(): Promise<number> {
  if (!block) return freePort();
  for (let tries = 0; tries < block.size; tries++) {
    const port = block.first + (next++ % block.size);
    if (await bindable(port)) return port;
  }
  throw new Error(`no free port in ${block.first}–${block.first + block.size - 1} (this jest worker's block)`);
}

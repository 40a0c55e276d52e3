/** `npm start`'s entry with its RTMP ingest edge on a port of its own, for the edge's attack tests. */
import { testPort } from './ports.js';
import { startAllProcess } from './npm-start.js';
import { startRedis, type TestRedis } from './redis-server.js';
import type { WorkerProcess } from './worker-process.js';

export interface EdgeProcess {
  child: WorkerProcess;
  /** The API's base URL. */
  url: string;
  rtmpPort: number;
}

/**
 * A real child process started like `npm start` (src/main/all.ts) against a redis-server of the test
 * file's own, started before the file's tests and stopped after them. Its fields are set in beforeAll.
 */
export function edgeProcessPerFile(): EdgeProcess {
  const edge = {} as EdgeProcess;
  let redis: TestRedis | undefined;
  beforeAll(async () => {
    redis = await startRedis();
    edge.rtmpPort = await testPort();
    Object.assign(edge, await startAllProcess(redis.env, { RELAY_RTMP_PORT: String(edge.rtmpPort) }));
  }, 90_000);
  afterAll(async () => {
    await edge.child?.kill('SIGTERM');
    await redis?.destroy();
  });
  return edge;
}

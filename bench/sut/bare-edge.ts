/**
 * The relay benchmark's bare ingest edge: node-media-server's RTMP session on a TCP listener, with the
 * same session settings as Syndicast's embedded edge (src/relay/ingest.edge.ts) and nothing else (no
 * key check, no Redis). The bare `ffmpeg -c copy` relays read the source streams from it.
 */
import { createRequire } from 'node:module';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { onStop, ready } from './child.js';

const require = createRequire(import.meta.url);
const NodeRtmpSession = require('node-media-server/src/node_rtmp_session') as new (config: unknown, socket: Socket) => { run(): void; stop(): void };
const NmsLogger = require('node-media-server/src/node_core_logger') as { setLogType(t: number): void };
NmsLogger.setLogType(0);

const config = { rtmp: { chunk_size: 60000, gop_cache: true, ping: 30, ping_timeout: 60 } };
const sessions = new Set<{ stop(): void }>();
const server = createServer((socket) => {
  const s = new NodeRtmpSession(config, socket);
  sessions.add(s);
  socket.once('close', () => sessions.delete(s));
  s.run();
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
onStop(async () => {
  for (const s of sessions) s.stop();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});
ready({ url: `rtmp://127.0.0.1:${(server.address() as AddressInfo).port}/live` });

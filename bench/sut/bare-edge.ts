/**
 * The relay benchmark's bare ingest edge: node-media-server's RTMP session on a TCP listener, with the
 * same session settings as Syndicast's embedded edge (src/relay/ingest.edge.ts) and nothing else (no
 * key check, no Redis). The bare `ffmpeg -c copy` relays read the source streams from it.
 */
import { createRequire } from 'node:module';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { onStop, ready } from './child.js';

const require = createRequire(import.meta.url);
type Session = { run(): void; stop(): void };
const NodeRtmpSession = require('node-media-server/src/node_rtmp_session') as new (config: unknown, socket: Socket) => Session;
const NmsLogger = require('node-media-server/src/node_core_logger') as { setLogType(t: number): void };
NmsLogger.setLogType(0);

/**
 * BENCH_RELAY_BARE_CORK=relay (a diagnosis knob; unset: stock node-media-server, the baseline the goal
 * names): the bare edge corks its players as Syndicast's edge does (EDGE_THREAD's EdgeSession in
 * src/relay/ingest.edge.ts: one cork at a time, each uncork releases, corked again when the next ten
 * have begun). Stock node-media-server corks a player twice when a tenth and an eleventh packet come in
 * one read and uncorks it once, so it holds that player's packets until a read ends on a tenth: fewer,
 * larger writes (and pauses). With this the two edges write alike and the rest of the difference is ours'.
 */
class CorkOnceSession extends NodeRtmpSession {
  declare numPlayCache: number;
  private corked = false;
  constructor(config: unknown, private readonly sock: Socket) {
    super(config, sock);
    (this as unknown as { res: unknown }).res = {
      cork: () => {
        if (this.corked) return;
        this.corked = true;
        sock.cork();
      },
      uncork: () => {
        if (!this.corked) return;
        this.release();
        if (this.numPlayCache > 0) {
          this.corked = true;
          sock.cork();
        }
      },
      write: (chunk: Buffer) => sock.write(chunk),
    };
  }

  private release(): void {
    if (!this.corked) return;
    this.corked = false;
    this.sock.uncork();
  }

  flush(): void {
    if (this.numPlayCache > 0) this.release();
  }
}
const SessionClass = process.env.BENCH_RELAY_BARE_CORK === 'relay' ? CorkOnceSession : NodeRtmpSession;

const config = { rtmp: { chunk_size: 60000, gop_cache: true, ping: 30, ping_timeout: 60 } };
const sessions = new Set<{ stop(): void }>();
const server = createServer((socket) => {
  const s = new SessionClass(config, socket);
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

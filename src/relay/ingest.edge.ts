/**
 * The embedded RTMP ingest edge (issue 10 items 1 and 6): node-media-server's RTMP session (no RTMP
 * code of ours) on our own TCP listener, so this edge knows which sessions are its own even when the
 * simulators' sinks (also node-media-server, which keeps its sessions and events process-wide) run
 * in the same process.
 *
 * A publish to `/live/{streamKey}` is allowed only for the current key of a show that is not ended or
 * cancelled; then the edge records itself as the show's source, so the relay process that owns the
 * show (maybe another one) reads the stream from here. node-media-server's own log lines carry the
 * stream path (the key) and are switched off.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { RelayRepository } from '../store/relay.repository.js';
import type { ShowRepository } from '../store/show.repository.js';

interface NmsSession {
  id: string;
  ip: string;
  run(): void;
  reject(): void;
  stop(): void;
}
interface NmsContext {
  nodeEvent: { on(ev: string, fn: (...a: unknown[]) => void): void; off(ev: string, fn: (...a: unknown[]) => void): void };
  sessions: Map<string, NmsSession>;
}

const require = createRequire(import.meta.url);
const NodeRtmpSession = require('node-media-server/src/node_rtmp_session') as new (config: unknown, socket: Socket) => NmsSession;
const context = require('node-media-server/src/node_core_ctx') as NmsContext;
const NmsLogger = require('node-media-server/src/node_core_logger') as { setLogType(t: number): void };
NmsLogger.setLogType(0); // its lines print stream paths, i.e. stream keys

export const EDGE_APP = 'live';

export interface EdgeOptions {
  port: number;
  host: string;
  relay: RelayRepository;
  shows: ShowRepository;
  log: Logger;
  /** Base URL relay processes read streams from; default `rtmp://127.0.0.1:{port}/live`. */
  internalUrl?: string;
  /** How often publishing shows are re-checked (a show that ended is cut off). */
  checkMs?: number;
}

export interface IngestEdge {
  port: number;
  /** `rtmp://…/live` that relay processes read from. */
  internalUrl: string;
  close(): Promise<void>;
}

const KEY_PATH = new RegExp(`^/${EDGE_APP}/([A-Za-z0-9_-]{8,200})$`);

export async function startIngestEdge(opts: EdgeOptions): Promise<IngestEdge> {
  const { relay, shows, log } = opts;
  const edgeId = randomBytes(4).toString('hex');
  const mine = new Set<string>();
  /** Accepted publishes: session id → show. */
  const publishing = new Map<string, { partnerId: string; showId: string; session: string }>();
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    const session = new NodeRtmpSession({ rtmp: { chunk_size: 60000, gop_cache: true, ping: 30, ping_timeout: 60 } }, socket);
    mine.add(session.id);
    socket.once('close', () => mine.delete(session.id));
    session.run();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const internalUrl = (opts.internalUrl ?? `rtmp://127.0.0.1:${port}/${EDGE_APP}`).replace(/\/+$/, '');

  const refuse = (id: string, why: string): void => {
    log.info({ session: id, why }, 'ingest publish refused');
    context.sessions.get(id)?.reject();
  };

  const onPrePublish = (...a: unknown[]): void => {
    const [id, path] = a as [string, string];
    if (!mine.has(id)) return;
    const m = KEY_PATH.exec(path);
    if (!m) return refuse(id, 'not /live/{streamKey}');
    const key = m[1]!;
    // node-media-server lets the publish start while we look the key up; a refusal cuts it off.
    void (async () => {
      const show = await relay.showOfKey(key);
      if (!show) return refuse(id, 'unknown stream key');
      const desired = await shows.desired(show.partnerId, show.showId);
      if (!desired || desired.state === 'ended' || desired.state === 'cancelled') return refuse(id, `show ${show.showId} is ${desired?.state ?? 'unknown'}`);
      if (!context.sessions.has(id)) return; // gone meanwhile
      const session = `${edgeId}:${id}`;
      publishing.set(id, { ...show, session });
      await relay.setSource(show.partnerId, show.showId, { edgeUrl: internalUrl, session, since: new Date().toISOString() });
      log.info({ partnerId: show.partnerId, showId: show.showId, session: id }, 'ingest publish accepted');
    })().catch((err: unknown) => {
      log.warn({ err: { message: (err as Error).message } }, 'ingest publish check failed; refusing');
      refuse(id, 'check failed');
    });
  };
  const onDonePublish = (...a: unknown[]): void => {
    const [id] = a as [string];
    const p = publishing.get(id);
    if (!p) return;
    publishing.delete(id);
    relay.clearSource(p.partnerId, p.showId, p.session).then(
      () => log.info({ partnerId: p.partnerId, showId: p.showId, session: id }, 'ingest publish ended'),
      (err: unknown) => log.warn({ err: { message: (err as Error).message } }, 'could not clear the relay source'),
    );
  };
  context.nodeEvent.on('prePublish', onPrePublish);
  context.nodeEvent.on('donePublish', onDonePublish);

  // A show that ends or is cancelled while its encoder still publishes is cut off.
  const check = setInterval(() => {
    for (const [id, p] of publishing) {
      shows.desired(p.partnerId, p.showId).then(
        (d) => {
          if (!d || d.state === 'ended' || d.state === 'cancelled') refuse(id, `show ${p.showId} is ${d?.state ?? 'gone'}`);
        },
        () => undefined,
      );
    }
  }, opts.checkMs ?? 2000);
  check.unref();

  log.info({ port }, 'ingest edge listening');
  return {
    port,
    internalUrl,
    close: async () => {
      clearInterval(check);
      context.nodeEvent.off('prePublish', onPrePublish);
      context.nodeEvent.off('donePublish', onDonePublish);
      await Promise.all(
        [...publishing.values()].map((p) => relay.clearSource(p.partnerId, p.showId, p.session).catch(() => undefined)),
      );
      publishing.clear();
      for (const id of mine) context.sessions.get(id)?.stop();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * The simulators' RTMP sinks (README "Platforms", issue 10 item 7): one RTMP server on `SIM_RTMP_PORT`
 * (default 1936) that every ingest address a simulator hands out points at, as
 * `rtmp://127.0.0.1:{port}/{platform}` + a per-stream key.
 *
 * The RTMP protocol is node-media-server's (2.x, its `NodeRtmpServer` only: no HTTP-FLV server, no
 * process-wide signal/uncaughtException handlers, no console logging). This module only decides who may
 * publish and keeps per-key statistics:
 *  - a publish to an unknown platform or key is refused (and so is any play: an ingest is write-only);
 *  - `rtmp_refuse` (at `rate`) refuses new publishes; `rtmp_drop` drops each publisher with probability
 *    `rate` when it starts and once per second while the fault is set;
 *  - per key: current and highest number of concurrent publishers (two pushers on one key is what the
 *    relay must never do; node-media-server refuses the second, the sink still counts it), bytes received
 *    while publishing, the codecs node-media-server parsed, the longest gap between data;
 *  - effects `stream.started` / `stream.stopped` on the platform's effect log;
 *  - `receiving(key)`: data arrived within the last RECEIVING_IDLE_MS (YouTube's `streamStatus: active`).
 *
 * node-media-server keeps its sessions in one process-wide context: this sink only touches sessions of
 * its own server (`session.config === this.config`), so another RTMP server in the same process (the
 * relay's ingest edge in a test) is left alone.
 */
import { createRequire } from 'node:module';
import type { Server, Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { randomId, type SimPlatform } from './sim.platform.js';

export const DEFAULT_SIM_RTMP_PORT = 1936;
/** A key whose last data is older than this is no longer `receiving` (YouTube: stream not active). */
export const RECEIVING_IDLE_MS = 2000;
/** A pause in the data longer than this is listed in `longGaps` (the relay's "no gap over 1 s"). */
export const LONG_GAP_MS = 1000;

/** A receiving stream's timing: when data first and last came, the longest pause, the latest long ones. */
interface Arrivals<E> {
  firstDataAt: number | null | undefined;
  lastDataAt: number | null | undefined;
  maxGapMs: number;
  longGaps: Array<{ endedAt: E; ms: number }>;
}

/**
 * Data came at `now`: the pause since the last data counts for `maxGapMs`, and one over LONG_GAP_MS is
 * listed (the latest 50), its end written by `stamp`. Shared by this sink and the minimal drain
 * (rtmp-drain.ts), so both judge "no gap over 1 s" alike.
 */
export function noteArrival<E>(st: Arrivals<E>, now: number, stamp: (at: number) => E): void {
  if (st.lastDataAt !== undefined && st.lastDataAt !== null) {
    const gap = now - st.lastDataAt;
    if (gap > st.maxGapMs) st.maxGapMs = gap;
    if (gap > LONG_GAP_MS) {
      st.longGaps.push({ endedAt: stamp(now), ms: gap });
      if (st.longGaps.length > 50) st.longGaps.shift();
    }
  }
  st.firstDataAt ??= now;
  st.lastDataAt = now;
}
const DROP_CHECK_MS = 1000;
const IDLE_CHECK_MS = 250;

// ---------------------------------------------------------------------------------------------
// node-media-server 2.x (CommonJS, untyped): the few members used here
// ---------------------------------------------------------------------------------------------

interface NmsSession {
  id: string;
  config: object;
  socket: Socket;
  isPublishing: boolean;
  publishStreamId: number;
  videoCodecName: string;
  audioCodecName: string;
  reject(): void;
  stop(): void;
  sendStatusMessage(streamId: number, level: string, code: string, description: string): void;
}
interface NmsContext {
  sessions: Map<string, NmsSession>;
  nodeEvent: NodeJS.EventEmitter;
}
interface NmsRtmpServer {
  tcpServer: Server;
}
type NmsRtmpServerClass = new (config: { rtmp: Record<string, unknown> }) => NmsRtmpServer;

const require = createRequire(import.meta.url);
const NodeRtmpServer = require('node-media-server/src/node_rtmp_server.js') as NmsRtmpServerClass;
const nmsContext = require('node-media-server/src/node_core_ctx.js') as NmsContext;
const nmsLogger = require('node-media-server/src/node_core_logger.js') as { setLogType(t: number): void; LOG_TYPES: { NONE: number } };
// node-media-server logs stream paths (which end in stream keys) to stdout: keys are secrets.
nmsLogger.setLogType(nmsLogger.LOG_TYPES.NONE);

/** ffmpeg's names for the FLV codec names node-media-server reports. */
function codecName(nms: string): string | null {
  if (!nms) return null;
  const map: Record<string, string> = { H264: 'h264', H265: 'hevc', AAC: 'aac', MP3: 'mp3', AV1: 'av1', OPUS: 'opus', Speex: 'speex' };
  return map[nms] ?? nms.toLowerCase();
}

// ---------------------------------------------------------------------------------------------
// Per platform: the stream keys it handed out
// ---------------------------------------------------------------------------------------------

/** GET /_sim/{platform}/streams */
export interface SimStreamView {
  streamKey: string;
  /** The platform's id of the show this key belongs to (YouTube: the bound broadcast, else the liveStream id). */
  externalId: string;
  /** Some encoder is publishing on this key now. */
  publishing: boolean;
  /** Concurrent publishers on this key now (a refused second pusher counts while it is connected). */
  publishers: number;
  /** Highest `publishers` ever seen on this key: 2 means two encoders pushed at once. */
  maxPublishers: number;
  /** Bytes received while publishing, over every publish on this key. */
  bytes: number;
  /** Codecs of the last publish (ffmpeg names: `h264`, `aac`), null before any media arrived. */
  videoCodec: string | null;
  audioCodec: string | null;
  /** Start of the current publish (ISO), null when nobody publishes. */
  since: string | null;
  /** Data arrived within the last 2 s (YouTube's `streamStatus: active`). */
  receiving: boolean;
  lastDataAt: string | null;
  /** First data ever received on this key (ISO): "publish → first byte" measurements. */
  firstDataAt: string | null;
  /** Longest time between two pieces of data on this key, across reconnects (ms). */
  maxGapMs: number;
  /** The latest (at most 50) gaps over LONG_GAP_MS between two pieces of data: when each ended, and its length. */
  longGaps: Array<{ endedAt: string; ms: number }>;
  /** Publishes accepted, refused (rtmp_refuse / duplicate), and dropped by rtmp_drop. */
  publishes: number;
  refused: number;
  drops: number;
}

interface KeyState {
  streamKey: string;
  externalId: () => string;
  sessions: Set<NmsSession>;
  maxPublishers: number;
  bytes: number;
  videoCodec: string | null;
  audioCodec: string | null;
  since: number | undefined;
  receiving: boolean;
  lastDataAt: number | undefined;
  firstDataAt: number | undefined;
  maxGapMs: number;
  longGaps: Array<{ endedAt: string; ms: number }>;
  publishes: number;
  refused: number;
  drops: number;
}

export type ReceivingListener = (streamKey: string, receiving: boolean) => void;

export class SimStreams {
  private readonly keys = new Map<string, KeyState>();
  private readonly listeners: ReceivingListener[] = [];
  /** Set when a sink serves this platform; until then addresses name the default port. */
  sink: { host: string; port: number } | undefined;

  constructor(readonly sim: SimPlatform) {
    sim.onReset(() => this.clear());
  }

  get platform(): string {
    return this.sim.name;
  }

  /** `rtmp://127.0.0.1:{SIM_RTMP_PORT}/{platform}`: the encoder publishes to `{url}/{streamKey}`. */
  ingestUrl(): string {
    const host = this.sink?.host ?? '127.0.0.1';
    return `rtmp://${host.includes(':') ? `[${host}]` : host}:${this.sink?.port ?? DEFAULT_SIM_RTMP_PORT}/${this.platform}`;
  }

  /** Accept publishes on `streamKey` from now on; `externalId` is read whenever it is reported. */
  register(streamKey: string, externalId: string | (() => string)): { url: string; streamKey: string } {
    const resolve = typeof externalId === 'string' ? () => externalId : externalId;
    const cur = this.keys.get(streamKey);
    if (cur) cur.externalId = resolve;
    else {
      this.keys.set(streamKey, {
        streamKey,
        externalId: resolve,
        sessions: new Set(),
        maxPublishers: 0,
        bytes: 0,
        videoCodec: null,
        audioCodec: null,
        since: undefined,
        receiving: false,
        lastDataAt: undefined,
        firstDataAt: undefined,
        maxGapMs: 0,
        longGaps: [],
        publishes: 0,
        refused: 0,
        drops: 0,
      });
    }
    return { url: this.ingestUrl(), streamKey };
  }

  /** A new random key for a show (the address a platform's app would show an operator). */
  issue(externalId: string): { url: string; streamKey: string } {
    return this.register(`${this.platform.slice(0, 2)}-${randomId(18)}`, externalId);
  }

  /** The most recently registered key of a show, if any. */
  ingestOf(externalId: string): { url: string; streamKey: string } | undefined {
    let found: string | undefined;
    for (const st of this.keys.values()) if (st.externalId() === externalId) found = st.streamKey;
    return found === undefined ? undefined : { url: this.ingestUrl(), streamKey: found };
  }

  has(streamKey: string): boolean {
    return this.keys.has(streamKey);
  }

  receiving(streamKey: string): boolean {
    return this.keys.get(streamKey)?.receiving ?? false;
  }

  /** Called when a key starts or stops receiving data (YouTube turns its liveStream active / inactive). */
  onReceiving(fn: ReceivingListener): void {
    this.listeners.push(fn);
  }

  list(): SimStreamView[] {
    return [...this.keys.values()].map((st) => {
      const cur = [...st.sessions].find((s) => s.isPublishing);
      return {
        streamKey: st.streamKey,
        externalId: st.externalId(),
        publishing: cur !== undefined,
        publishers: st.sessions.size,
        maxPublishers: st.maxPublishers,
        bytes: st.bytes,
        videoCodec: (cur && codecName(cur.videoCodecName)) ?? st.videoCodec,
        audioCodec: (cur && codecName(cur.audioCodecName)) ?? st.audioCodec,
        since: st.since !== undefined ? new Date(st.since).toISOString() : null,
        receiving: st.receiving,
        lastDataAt: st.lastDataAt !== undefined ? new Date(st.lastDataAt).toISOString() : null,
        firstDataAt: st.firstDataAt !== undefined ? new Date(st.firstDataAt).toISOString() : null,
        maxGapMs: st.maxGapMs,
        longGaps: [...st.longGaps],
        publishes: st.publishes,
        refused: st.refused,
        drops: st.drops,
      };
    });
  }

  /** POST /_sim/reset: forget every key, disconnecting whoever still publishes on one. */
  clear(): void {
    const sessions = [...this.keys.values()].flatMap((st) => [...st.sessions]);
    this.keys.clear();
    for (const s of sessions) s.stop();
  }

  // --- called by the sink -----------------------------------------------------------------

  /** @internal */ stateOf(streamKey: string): KeyState | undefined {
    return this.keys.get(streamKey);
  }

  /** @internal */ setReceiving(st: KeyState, receiving: boolean): void {
    if (st.receiving === receiving) return;
    st.receiving = receiving;
    for (const fn of this.listeners) fn(st.streamKey, receiving);
  }

  /** @internal */ states(): IterableIterator<KeyState> {
    return this.keys.values();
  }
}

const streamsBySim = new WeakMap<SimPlatform, SimStreams>();
/** The stream keys of one platform simulator (created on first use). */
export function streamsOf(sim: SimPlatform): SimStreams {
  let s = streamsBySim.get(sim);
  if (!s) {
    s = new SimStreams(sim);
    streamsBySim.set(sim, s);
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// The RTMP server
// ---------------------------------------------------------------------------------------------

interface Publish {
  streams: SimStreams;
  st: KeyState;
  published: boolean;
  /** Set when the publish ended: a data event being dispatched at that moment still reaches onData. */
  ended: boolean;
  onData?: (chunk: Buffer) => void;
}

export class RtmpSink {
  private readonly config = { rtmp: { port: 1, chunk_size: 60000, gop_cache: false, ping: 30, ping_timeout: 60 } };
  private readonly server: NmsRtmpServer;
  private readonly byPlatform: Map<string, SimStreams>;
  private readonly publishes = new Map<NmsSession, Publish>();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly handlers: Array<[string, (...args: unknown[]) => void]> = [];
  port = 0;

  private constructor(
    readonly host: string,
    streams: readonly SimStreams[],
  ) {
    this.byPlatform = new Map(streams.map((s) => [s.platform, s]));
    this.server = new NodeRtmpServer(this.config);
  }

  /** Listen on `port` (0 = any free one) and serve these platforms' keys. */
  static async start(opts: { port?: number; host?: string; streams: readonly SimStreams[] }): Promise<RtmpSink> {
    const sink = new RtmpSink(opts.host ?? '127.0.0.1', opts.streams);
    await sink.listen(opts.port ?? DEFAULT_SIM_RTMP_PORT);
    return sink;
  }

  get url(): string {
    return `rtmp://${this.host.includes(':') ? `[${this.host}]` : this.host}:${this.port}`;
  }

  private async listen(port: number): Promise<void> {
    const tcp = this.server.tcpServer;
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen(port, this.host, () => {
        tcp.off('error', reject);
        resolve();
      });
    });
    tcp.on('error', () => undefined); // after listening: a socket error is the session's business
    this.port = (tcp.address() as AddressInfo).port;
    for (const s of this.byPlatform.values()) s.sink = { host: this.host, port: this.port };

    this.on('prePublish', (id, path) => this.prePublish(id as string, path as string));
    this.on('postPublish', (id) => this.postPublish(id as string));
    this.on('donePublish', (id) => this.ended(id as string));
    this.on('doneConnect', (id) => this.ended(id as string));
    this.on('prePlay', (id) => this.mine(id as string)?.reject());

    const drop = setInterval(() => this.dropTick(), DROP_CHECK_MS);
    const idle = setInterval(() => this.idleTick(), IDLE_CHECK_MS);
    drop.unref();
    idle.unref();
    this.timers.push(drop, idle);
  }

  private on(event: string, fn: (...args: unknown[]) => void): void {
    nmsContext.nodeEvent.on(event, fn);
    this.handlers.push([event, fn]);
  }

  /** A session of this sink's server (other RTMP servers in the process are not ours). */
  private mine(id: string): NmsSession | undefined {
    const s = nmsContext.sessions.get(id);
    return s && s.config === this.config ? s : undefined;
  }

  private refuse(session: NmsSession, why: string): void {
    session.sendStatusMessage(session.publishStreamId, 'error', 'NetStream.Publish.BadName', why);
    session.reject();
  }

  private prePublish(id: string, path: string): void {
    const session = this.mine(id);
    if (!session) return;
    const [, app = '', key = ''] = path.split('/');
    const streams = this.byPlatform.get(app);
    const st = streams?.stateOf(key);
    if (!streams || !st) return this.refuse(session, 'Unknown stream key');
    if (streams.sim.rollFault(['rtmp_refuse'])) {
      st.refused += 1;
      return this.refuse(session, 'Publishing refused');
    }
    st.sessions.add(session);
    st.maxPublishers = Math.max(st.maxPublishers, st.sessions.size);
    this.publishes.set(session, { streams, st, published: false, ended: false });
    // a second publisher on the key: node-media-server refuses it right after this event
    if (st.sessions.size > 1) st.refused += 1;
  }

  private postPublish(id: string): void {
    const session = this.mine(id);
    const p = session && this.publishes.get(session);
    if (!session || !p) return;
    const { st, streams } = p;
    p.published = true;
    const wasPublishing = st.since !== undefined;
    st.publishes += 1;
    st.since ??= Date.now();
    st.videoCodec = null;
    st.audioCodec = null;
    p.onData = (chunk: Buffer) => {
      if (p.ended) return;
      const now = Date.now();
      st.bytes += chunk.length;
      noteArrival(st, now, (at) => new Date(at).toISOString());
      streams.setReceiving(st, true);
    };
    session.socket.on('data', p.onData);
    if (!wasPublishing) streams.sim.recordEffect({ type: 'stream.started', externalId: st.externalId() });
    if (streams.sim.rollFault(['rtmp_drop'])) this.drop(session, p);
  }

  private ended(id: string): void {
    // the session may already be gone from the context (doneConnect comes last): find it by id
    for (const [session, p] of this.publishes) {
      if (session.id !== id) continue;
      this.publishes.delete(session);
      p.ended = true;
      if (p.onData) session.socket.off('data', p.onData);
      const { st, streams } = p;
      st.sessions.delete(session);
      if (codecName(session.videoCodecName)) st.videoCodec = codecName(session.videoCodecName);
      if (codecName(session.audioCodecName)) st.audioCodec = codecName(session.audioCodecName);
      const stillPublishing = [...st.sessions].some((s) => this.publishes.get(s)?.published);
      if (p.published && !stillPublishing && st.since !== undefined) {
        st.since = undefined;
        streams.setReceiving(st, false);
        streams.sim.recordEffect({ type: 'stream.stopped', externalId: st.externalId() });
      }
    }
  }

  private drop(session: NmsSession, p: Publish): void {
    p.st.drops += 1;
    session.stop();
  }

  private dropTick(): void {
    for (const [session, p] of [...this.publishes]) {
      if (p.published && p.streams.sim.rollFault(['rtmp_drop'])) this.drop(session, p);
    }
  }

  private idleTick(): void {
    const now = Date.now();
    for (const streams of this.byPlatform.values()) {
      for (const st of streams.states()) {
        if (st.receiving && (st.lastDataAt === undefined || now - st.lastDataAt > RECEIVING_IDLE_MS)) streams.setReceiving(st, false);
      }
    }
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    const closed = new Promise<void>((resolve) => this.server.tcpServer.close(() => resolve()));
    for (const s of [...nmsContext.sessions.values()]) if (s.config === this.config) s.stop();
    await closed;
    for (const [event, fn] of this.handlers) nmsContext.nodeEvent.off(event, fn);
    for (const s of this.byPlatform.values()) if (s.sink?.port === this.port) s.sink = undefined;
  }
}

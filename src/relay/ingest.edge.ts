/**
 * The embedded RTMP ingest edge (issue 10 items 1 and 6): node-media-server's RTMP session (no RTMP
 * code of ours) on our own TCP listener, run in a thread of its own (a worker thread).
 *
 * Why a thread: the edge's fan-out (every publish's packets copied to every reader, ~75 Buffers per
 * second per stream) is most of the relay process's CPU, and its Buffer churn drives V8's garbage
 * collections. On the main thread each of those collections also marked the relay's own heap (Redis
 * client, supervisors, logger: ~30 MB live against the edge's ~7 MB), several times a second at 100
 * streams, and the edge's packets waited behind ffmpeg spawns and Redis round trips. In its own
 * thread the edge has its own heap and event loop, like the bare node-media-server the relay
 * benchmark compares with (docs/benchmarks.md "Video relay"); the main thread keeps Redis, the key
 * checks and the supervisors, and exchanges only publish events with it. node-media-server keeps its
 * sessions and events per module instance, i.e. per thread: every session of the edge's thread is
 * this edge's own, even when the simulators' sinks (also node-media-server) run in the same process.
 *
 * A publish to `/live/{streamKey}` is allowed only for the current key of a show that is not ended or
 * cancelled; then the edge records itself as the show's source, so the relay process that owns the
 * show (maybe another one) reads the stream from here. node-media-server's own log lines carry the
 * stream path (the key) and are switched off.
 *
 * Playing a stream takes more than its key: the key is the encoder's credential to publish, and with
 * it alone anyone could watch the show from the edge before (or instead of) the platforms. A `play`
 * must also carry `?play={token}`, the HMAC of the stream name under a key derived from SECRETS_KEY
 * (`edgePlayToken`; the relay's readers play `{edge}/{key}?play={token}`), which only the service's own processes have; the edge's thread checks it before
 * node-media-server sees the play and refuses (and disconnects) any other. The relay's readers on
 * other hosts have SECRETS_KEY anyway (they open the show's sealed key with it), so nothing else is
 * configured; an address rule would not do (a reader's address is any relay host's).
 */
import { maxRtmpConnections } from '../lib/connection-limits.js';
import { createRequire } from 'node:module';
import { createHmac, randomBytes } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { isRedisUnreachable } from '../lib/redis-outage-log.js';
import type { RelayRepository, RelaySource } from '../store/relay.repository.js';
import type { ShowRepository } from '../store/show.repository.js';

const require = createRequire(import.meta.url);
/** node-media-server's modules, resolved here and loaded by the edge's thread. */
export const NMS_PATHS = {
  session: require.resolve('node-media-server/src/node_rtmp_session'),
  context: require.resolve('node-media-server/src/node_core_ctx'),
  logger: require.resolve('node-media-server/src/node_core_logger'),
  amf: require.resolve('node-media-server/src/node_core_amf'),
};
/**
 * What one RTMP session's message buffers may hold (EDGE_THREAD's rtmpPacketAlloc): before it
 * publishes, each message at most `commandBytes` and all of them `commandBuffers`; while it publishes,
 * all of them `publishBuffers`. A player may have at most `playerBacklog` bytes written to it and not
 * yet taken by its socket (checked every 0.5 s). More drops the session.
 */
export const RTMP_BUFFER_LIMITS = { commandBytes: 64 * 1024, commandBuffers: 1024 * 1024, publishBuffers: 32 * 1024 * 1024, playerBacklog: 32 * 1024 * 1024 };
/**
 * How long a connection may take from its accept to a publish whose key checked out, or a play (RTMP_START_MS). node-media-server
 * keeps a connection that does neither for good once it has sent `connect` (its pings keep its idle
 * timeout from firing; before that, 60 s): the edge takes maxRtmpConnections at once, so that many
 * connections from one client that never published filled the edge, and every partner's encoder (and the
 * relay's own readers reconnecting) was refused until that client let go. An encoder or a reader
 * publishes or plays within a second or two of connecting (a few round trips).
 */
export const RTMP_START_MS = 10_000;
/**
 * How many connections from one address the edge holds while they have neither published (with a key
 * the edge checked out) nor played (RELAY_RTMP_PENDING_PER_ADDRESS); a newer one over it is closed at once.
 * node-media-server accepts a publish of any key and the key is checked after: a publish counts until
 * its check answers, however long that takes (during a Redis outage one address filled the edge with
 * publishes of made-up keys, each holding up to 32 MiB; one whose check has not answered by
 * RTMP_START_MS is kept, not closed: it may be a real encoder reconnecting while its show rides the
 * outage), and a connection that publishes again counts again, closed if its address is at the cap. RTMP_START_MS closes a
 * connection that neither publishes nor plays after 10 s, but a client reconnecting at ~250 connections a second kept the edge's
 * maxRtmpConnections (2,500 at 20,000 open files) full all the same, and a real encoder was refused. A
 * cap on all of an address's connections would refuse the encoders behind one NAT or load balancer at a
 * mass go-live; a pending connection becomes a publish or a play within a few round trips, so even
 * hundreds of encoders behind one address connecting at once rarely have 64 pending together (one
 * refused retries, as encoders do).
 */
export const RTMP_PENDING_PER_ADDRESS = 64;
/** The RTMP session settings (bench/sut/bare-edge.ts uses the same). */
export const NMS_CONFIG = { rtmp: { chunk_size: 60000, gop_cache: true, ping: 30, ping_timeout: 60 } };

/** Messages from the edge's thread. */
type FromEdge =
  | { type: 'listening'; port: number }
  | { type: 'listenError'; message: string; code?: string }
  /** `n`: which publish of its connection (the main thread's 'accepted' names it). */
  | { type: 'postPublish'; id: string; path: string; n?: number }
  | { type: 'donePublish'; id: string }
  | { type: 'received'; counts: [string, number][]; at: number }
  | { type: 'gone'; id: string }
  | { type: 'sessionError'; id: string; name: string; code?: string; at?: string }
  | { type: 'playRefused'; id: string }
  | { type: 'publishBusy'; id: string; path: string }
  | { type: 'publishReplaced'; id: string; by: string; path: string; silentMs: number }
  | { type: 'notStarted'; count: number }
  | { type: 'pendingOverCap'; count: number; addresses: string[] }
  | { type: 'codecsRefused'; id: string; video: string | null; audio: string | null }
  | { type: 'closed' }
  /** A message to the thread that carried `ack`, handled. */
  | { type: 'handled'; ack: unknown };

/** How often the edge's thread counts each publish's received bytes (the `received` message). */
const COUNT_MS = 500;

/**
 * How the edge's thread tells a publish that sent nothing for a while (plain JS, part of EDGE_THREAD;
 * exported for its unit test). `seen`: when a session was last counted sending data ({ bytes, at }).
 * - noteCount: a count of the session's received bytes at `at`. A count made late (`late`: the thread
 *   was stalled since the one before) is no evidence of silence (the socket's data may be waiting
 *   unread in the kernel; after a stall the timer phase runs before the socket reads), so it counts as
 *   data seen: silence is measured again from there.
 * - silentMs: how long it has been silent as far as the counts observed (up to the last count,
 *   `lastCount`, not the clock now: a stalled thread observed nothing), 0 when its socket has read
 *   1 KiB or more since (a fresh byte count, at the decision). A takeover cut a live encoder when the
 *   thread had stalled 5 s: the first publish after it saw the stale `at` and its silence grown by the
 *   stall.
 */
export const EDGE_SILENCE = `
function noteCount(seen, bytes, at, late) {
  return !seen || late || bytes - seen.bytes >= 1024 ? { bytes, at } : seen;
}
function silentMs(seen, bytesNow, lastCount) {
  if (!seen || bytesNow - seen.bytes >= 1024) return 0;
  return Math.max(0, lastCount - seen.at);
}
`;

/**
 * What the platforms' RTMP ingest takes (YouTube, Facebook, TikTok, Whatnot, Bambuser: H.264 video, AAC
 * audio; /work/shared/PLATFORMS.md, docs/architecture.md "Video relay"), by ffmpeg's codec names. The
 * relay copies codecs (`-c copy`, no transcoding), so a publish in anything else is not relayed.
 */
export const RELAY_CODECS = { video: 'h264', audio: 'aac' } as const;

/**
 * How the edge's thread names a publish's codecs (plain JS, part of EDGE_THREAD; exported for its unit
 * test), by ffmpeg's names (the simulators' sinks report the same): from an FLV video or audio tag's
 * first bytes (the codec id, or an enhanced-RTMP FourCC), and from the numbers or FourCCs of its
 * `@setDataFrame` metadata (`videocodecid`, `audiocodecid`). undefined: nothing to tell (an empty tag, a
 * metadata value it does not know).
 */
export const EDGE_CODECS = `
const VIDEO_IDS = ['', 'mjpeg', 'flv1', 'flashsv', 'vp6f', 'vp6a', 'flashsv2', 'h264', '', '', '', '', 'hevc', 'av1'];
const AUDIO_IDS = ['pcm', 'adpcm_swf', 'mp3', 'pcm_s16le', 'nellymoser', 'nellymoser', 'nellymoser', 'pcm_alaw', 'pcm_mulaw', '', 'aac', 'speex', '', 'opus', 'mp3', 'device'];
// A Map, not an object: metadata names any string, and videocodecid "constructor" read Object's
// constructor (a function: the post to the main thread threw, and the session was dropped).
const FOURCCS = new Map([['avc1', 'h264'], ['hvc1', 'hevc'], ['av01', 'av1'], ['vp09', 'vp9'], ['mp4a', 'aac'], ['Opus', 'opus'], ['fLaC', 'flac'], ['ac-3', 'ac3'], ['ec-3', 'eac3'], ['.mp3', 'mp3']]);
function fourcc(buf, at) {
  const f = buf.toString('latin1', at, at + 4);
  return FOURCCS.get(f) || 'fourcc ' + JSON.stringify(f);
}
function videoCodecOf(payload) {
  if (payload.length === 0) return undefined;
  if ((payload[0] & 0x80) !== 0) return payload.length >= 5 ? fourcc(payload, 1) : undefined;
  const id = payload[0] & 0x0f;
  return VIDEO_IDS[id] || 'flv video codec ' + id;
}
function audioCodecOf(payload) {
  if (payload.length === 0) return undefined;
  const id = payload[0] >> 4;
  if (id === 9) return payload.length >= 5 ? fourcc(payload, 1) : undefined;
  return AUDIO_IDS[id] || 'flv audio codec ' + id;
}
function metaCodecOf(value, ids) {
  if (typeof value === 'string') return FOURCCS.get(value);
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) return undefined;
  if (value < ids.length) return ids[value] || undefined;
  if (value < 0x1000000) return undefined;
  const b = Buffer.alloc(4);
  b.writeUInt32BE(value >>> 0);
  return fourcc(b, 0);
}
`;

/**
 * The edge's thread (plain CommonJS, run with `eval`: no loader, the same under tsx, jest and a
 * build): node-media-server's sessions on a TCP listener, nothing else. Its accepted publishes go to the
 * main thread, which checks the key and answers `reject` when the publish is refused. node-media-server
 * keeps its sessions and events per module instance, i.e. per thread here: every session of this
 * thread is this edge's own. Its log lines carry the stream path (the key) and are switched off.
 */
export const EDGE_THREAD = `
const { parentPort, workerData } = require('node:worker_threads');
const { createServer } = require('node:net');
const NodeRtmpSession = require(workerData.paths.session);
const context = require(workerData.paths.context);
const AMF = require(workerData.paths.amf);
const { createHmac, timingSafeEqual } = require('node:crypto');
${EDGE_CODECS}
require(workerData.paths.logger).setLogType(0);
// The keys a play's token may be signed with (edgePlayToken; SECRETS_KEY's, then SECRETS_KEY_PREVIOUS's).
const playKeys = (workerData.playKeys || []).map((k) => Buffer.from(k, 'hex'));
// A play names '{stream name}?play={token}'; node-media-server plays the name before the first '?'.
function playAllowed(streamName) {
  const q = streamName.indexOf('?');
  if (q < 0) return false;
  const given = new URLSearchParams(streamName.slice(q + 1)).get('play');
  if (!given) return false;
  const name = streamName.slice(0, q);
  const got = Buffer.from(given);
  return playKeys.some((k) => {
    const want = Buffer.from(createHmac('sha256', k).update(name).digest('base64url'));
    return want.length === got.length && timingSafeEqual(want, got);
  });
}
// A second publish on a connection that already publishes: node-media-server would overwrite the
// publishing stream's path and id before refusing it (BadConnection), so the connection's close would
// then free the refused path and leave the accepted one registered. Refused here, nothing overwritten.
class EdgeSession extends NodeRtmpSession {
  // node-media-server corks a player's socket at the first of every ten packets it sends it and
  // uncorks it on the next tick after the tenth. A tenth and an eleventh packet read from the
  // publisher in one go (one socket read carries many) corked it again before that uncork ran:
  // corked twice, uncorked once, the socket stayed corked, and it wrote nothing until a read happened
  // to end on that player's tenth packet. Players joined at the same count share the fate: on a loaded
  // machine (bigger reads) one was fed nothing for 6 s and more while the others flowed, the stream
  // piling up unwritten in this thread (its relay reader restarted as stalled). One cork at a time
  // here, and each uncork releases it: a player's packets wait at most until its next tenth.
  // An uncork that finds the next ten already begun (its cork came while corked) releases what is
  // written and corks again for the rest of those ten: else they went out one write each until the
  // next group's cork (the edge, the reader and its sink each paying per write: ≈ 20 % of the relay
  // benchmark's CPU per stream).
  // flush() (the publisher's unpublish) releases without corking again.
  constructor(config, socket) {
    super(config, socket);
    let corked = false;
    const release = () => {
      if (!corked) return;
      corked = false;
      socket.uncork();
    };
    this.release = release;
    this.res = {
      cork() {
        if (corked) return;
        corked = true;
        socket.cork();
      },
      uncork: () => {
        if (!corked) return;
        release();
        if (this.numPlayCache > 0) {
          corked = true;
          socket.cork();
        }
      },
      write: (chunk) => socket.write(chunk),
    };
  }
  flush() {
    if (this.numPlayCache > 0) this.release();
  }
  onPublish(invokeMessage) {
    if (this.isPublishing) return this.sendStatusMessage(this.parserPacket.header.stream_id, 'error', 'NetStream.Publish.BadConnection', 'Connection already publishing');
    this.codecs = { video: null, audio: null };
    this.codecsRefused = false;
    // A second encoder on a stream that is published already: node-media-server refuses it
    // (NetStream.Publish.BadName) without a word to the service; the main thread logs the refusal.
    const path = typeof invokeMessage.streamName === 'string' ? '/' + this.appname + '/' + invokeMessage.streamName.split('?')[0] : undefined;
    if (path && context.publishers.has(path)) {
      // Unless the connection that publishes it has sent nothing for publishTakeoverMs: an encoder whose
      // connection went half-open (its network dropped without a FIN, its process froze) is still
      // connected, and the edge's pings kept node-media-server's idle timeout from firing, so it held
      // the key for good and the encoder's reconnect (a new connection) was refused. The silent one is
      // stopped (its readers wait for the next publish, as after any reconnect) and the new one goes on.
      const holder = context.sessions.get(context.publishers.get(path));
      const seen = holder && dataSeen.get(holder.id);
      const silent = seen ? silentMs(seen, holder.socket.bytesRead, lastCount) : 0;
      if (holder && seen && silent >= workerData.publishTakeoverMs) {
        parentPort.postMessage({ type: 'publishReplaced', id: holder.id, by: this.id, path, silentMs: silent });
        holder.stop();
      } else parentPort.postMessage({ type: 'publishBusy', id: this.id, path });
    }
    // A publish stays pending (counted against its address) until the main thread has checked its key
    // (its 'accepted'): node-media-server accepts any key, and a publish of a made-up one, its check
    // waiting on Redis (an outage), held the edge's connections and 32 MiB of buffers each without
    // counting. Each publish of the connection is numbered (its postPublish carries the number, the
    // main thread's 'accepted' names it): an answer for the connection's earlier publish does not
    // count for this one.
    this.publishes = (this.publishes || 0) + 1;
    // Published again on a connection whose earlier publish was accepted (it stopped: deleteStream or
    // closeStream; node-media-server 2.7.4 does nothing on FCUnpublish): pending again while this key is
    // checked. It counted for nothing, so one connection could publish made-up keys, one after another,
    // past its address's cap; and counted without a check of the cap, N idle connections that once
    // published a valid key could all publish made-up ones (an outage: no check answers) and hold N
    // pending. At the cap it is closed, as a new connection over the cap is.
    if (!mayEnterPending(this)) {
      noteOverCap(this.address);
      return this.drop();
    }
    super.onPublish(invokeMessage);
    if (this.isPublishing) enterPending(this);
  }
  // A play without the service's play token for its stream (a client holding only the stream key):
  // refused before node-media-server registers it as a player, and the connection closed.
  onPlay(invokeMessage) {
    if (typeof invokeMessage.streamName !== 'string' || playAllowed(invokeMessage.streamName)) {
      super.onPlay(invokeMessage);
      if (this.isPlaying || this.isIdling) leavePending(this);
      return;
    }
    this.sendStatusMessage(this.parserPacket.header.stream_id, 'error', 'NetStream.Play.Unauthorized', 'Authorization required.');
    parentPort.postMessage({ type: 'playRefused', id: this.id });
    this.reject();
  }
  // The publish's codecs, seen on each of its tags (and in its metadata, which encoders send first):
  // one the platforms do not take (RELAY_CODECS) and nothing more of the publish goes to its players
  // (the relay's readers: they would push it with -c copy, and the platform refuse or break it), the
  // main thread told (the show's source says so; the relay pushes nothing and reports it). A kind never
  // seen (no audio, or no video) is no reason to refuse. Stays refused until the publish ends: the
  // encoder publishes again with H.264 and AAC.
  noteCodec(kind, name) {
    if (name === undefined || !this.isPublishing || !this.codecs || this.codecs[kind] === name) return false;
    this.codecs[kind] = name;
    if (name !== workerData.codecs[kind]) this.codecsRefused = true;
    return true;
  }
  tellCodecs() {
    if (this.codecsRefused) parentPort.postMessage({ type: 'codecsRefused', id: this.id, video: this.codecs.video, audio: this.codecs.audio });
  }
  rtmpVideoHandler() {
    if (this.noteCodec('video', videoCodecOf(this.parserPacket.payload.subarray(0, this.parserPacket.header.length)))) this.tellCodecs();
    if (this.codecsRefused) return;
    return super.rtmpVideoHandler();
  }
  rtmpAudioHandler() {
    if (this.noteCodec('audio', audioCodecOf(this.parserPacket.payload.subarray(0, this.parserPacket.header.length)))) this.tellCodecs();
    if (this.codecsRefused) return;
    return super.rtmpAudioHandler();
  }
  rtmpDataHandler() {
    if (this.codecsRefused) return;
    if (this.isPublishing) {
      let meta;
      try {
        const offset = this.parserPacket.header.type === 15 ? 1 : 0; // AMF3 data: one byte before the AMF0
        meta = AMF.decodeAmf0Data(this.parserPacket.payload.subarray(offset, this.parserPacket.header.length));
      } catch {
        meta = undefined; // node-media-server's own handler below decides what to do with it
      }
      const obj = meta && meta.cmd === '@setDataFrame' && meta.dataObj;
      if (obj) {
        const video = this.noteCodec('video', metaCodecOf(obj.videocodecid, VIDEO_IDS));
        const audio = this.noteCodec('audio', metaCodecOf(obj.audiocodecid, AUDIO_IDS));
        if (video || audio) this.tellCodecs();
        if (this.codecsRefused) return;
      }
    }
    return super.rtmpDataHandler();
  }
  // node-media-server allocates each chunk stream's message buffer at the length the message's header
  // announces (up to 16 MiB), on any of ~830 chunk stream ids, and keeps it while the connection is
  // open: one connection, before connect or any key check, could hold 13 GiB of the process's memory
  // with what it sent (nginx-rtmp's max_message is 1 MiB). Bounded here (RTMP_BUFFER_LIMITS): before a
  // publish a message is a command (a few hundred bytes), so 64 KiB each and 1 MiB in all; a publishing
  // session's buffers (its key is checked within milliseconds, a refused one is cut off) 32 MiB in all,
  // many times a keyframe. A session over its bound is dropped.
  rtmpPacketAlloc() {
    const need = this.parserPacket.header.length;
    if (this.parserPacket.capacity < need) {
      const publishing = this.isPublishing;
      let held = 0;
      for (const p of this.inPackets.values()) if (p !== this.parserPacket) held += p.capacity;
      if ((!publishing && need > workerData.limits.commandBytes) || held + need + 1024 > (publishing ? workerData.limits.publishBuffers : workerData.limits.commandBuffers)) {
        const err = new RangeError('RTMP message larger than the edge takes');
        err.code = 'RTMP_MESSAGE_TOO_LARGE';
        throw err;
      }
    }
    return super.rtmpPacketAlloc();
  }
  report(err) {
    // Only strings cross to the main thread: a thrown value's code or name may be a Symbol, a function
    // or a getter that throws, and a failed post would end this thread all the same.
    const read = (f) => {
      try {
        return f();
      } catch {
        return undefined;
      }
    };
    const name = read(() => String((err && err.name) || typeof err));
    const code = read(() => (err && err.code != null ? String(err.code) : undefined));
    const frame = read(() => String((err && err.stack) || '').split('\\n').find((l) => /^\\s+at /.test(l)));
    try {
      parentPort.postMessage({ type: 'sessionError', id: this.id, name: name || 'unknown', code, at: frame ? frame.trim() : undefined });
    } catch {
      // nothing to report then; the session is dropped all the same
    }
  }
  // Closes the session; \`err\` (what failed, if anything) goes to the main thread.
  drop(err) {
    if (arguments.length > 0) this.report(err);
    try {
      this.stop();
    } catch {
      // stop() itself failed part way: what it did not get to is done here. The stream path must be
      // freed (else the same key cannot publish again until the edge restarts) and this session must
      // be in no publisher's players (else that publisher's next packet throws on it).
      if (this.publishStreamPath && context.publishers.get(this.publishStreamPath) === this.id) context.publishers.delete(this.publishStreamPath);
      context.idlePlayers.delete(this.id);
      for (const s of context.sessions.values()) if (s.players) s.players.delete(this.id);
    }
    this.isStarting = false;
    if (this.pingInterval != null) clearInterval(this.pingInterval);
    this.pingInterval = null;
    context.sessions.delete(this.id);
    this.socket.destroy();
  }
}
// node-media-server trusts what a client sends: an RTMP connect without an "app" (and other malformed
// messages) throws inside its socket handlers, and an exception there would end this thread and with
// it the whole process (API and workers too, under npm start) -- one TCP client, before any key check.
// A session whose handlers throw is dropped instead; the other sessions go on. Only the error's name,
// code and place go to the main thread: a Node error message can quote the values it was given.
for (const name of ['onSocketData', 'onSocketClose', 'onSocketError', 'onSocketTimeout']) {
  const handler = NodeRtmpSession.prototype[name];
  EdgeSession.prototype[name] = function (...args) {
    try {
      handler.apply(this, args);
    } catch (err) {
      this.drop(err);
    }
  };
}
const sockets = new Set();
// The sessions that have neither published (a key the main thread checked out) nor played yet, by their client's address
// (RTMP_PENDING_PER_ADDRESS): one address holds at most pendingPerAddress of them, a newer one is closed
// at once. A flood of reconnects from one client kept the edge's connections full although each of
// them was closed after startMs; a cap on all of an address's connections would refuse encoders behind
// one NAT. A session leaves its address's set once its publish's key is accepted or it plays (or it closes),
// and is in it again while a later publish of the connection has its key checked.
const pendingByAddress = new Map();
const pendingCap = workerData.pendingPerAddress;
// Connections closed over the cap since the last report, and a few of their addresses.
let overCap = 0;
const overCapAddresses = new Set();
// Whether the session is pending, or its address has room for one more pending session.
function mayEnterPending(session) {
  if (!(pendingCap > 0) || session.pendingAt !== undefined) return true;
  const set = pendingByAddress.get(session.address);
  return !set || set.size < pendingCap;
}
// A connection closed over the cap (reported at the next count).
function noteOverCap(address) {
  overCap++;
  if (overCapAddresses.size < 5) overCapAddresses.add(address);
}
function enterPending(session) {
  session.keyAccepted = false;
  if (!(pendingCap > 0) || session.pendingAt !== undefined) return;
  const set = pendingByAddress.get(session.address);
  if (set) set.add(session);
  else pendingByAddress.set(session.address, new Set([session]));
  session.pendingAt = session.address;
}
function leavePending(session) {
  const set = session.pendingAt !== undefined && pendingByAddress.get(session.pendingAt);
  if (set) {
    set.delete(session);
    if (set.size === 0) pendingByAddress.delete(session.pendingAt);
  }
  session.pendingAt = undefined;
}
// A publish whose key the main thread checked out: it leaves its address's pending set (only then).
function keyAccepted(session) {
  session.keyAccepted = true;
  leavePending(session);
}
const server = createServer((socket) => {
  const address = socket.remoteAddress || '';
  const pending = pendingCap > 0 ? pendingByAddress.get(address) : undefined;
  if (pending && pending.size >= pendingCap) {
    noteOverCap(address);
    socket.on('error', () => undefined);
    socket.destroy();
    return;
  }
  sockets.add(socket);
  const session = new EdgeSession(workerData.config, socket);
  session.acceptedAt = Date.now();
  session.address = address;
  enterPending(session);
  socket.once('close', () => {
    sockets.delete(socket);
    leavePending(session);
    dataSeen.delete(session.id);
    parentPort.postMessage({ type: 'gone', id: session.id });
  });
  session.run();
});
// Only a publish node-media-server has accepted (postPublish; prePublish comes before it decides, also
// for the publishes it then refuses) is reported; the main thread checks its key.
context.nodeEvent.on('postPublish', (id, path) => {
  const s = context.sessions.get(id);
  parentPort.postMessage({ type: 'postPublish', id, path, n: s && s.publishes });
});
context.nodeEvent.on('donePublish', (id) => parentPort.postMessage({ type: 'donePublish', id }));
// Bytes each publishing session has received so far, every half second: the main thread tells an
// encoder that stalled without closing (no new bytes) from one that publishes. "at": this thread's
// clock when it counted (by then it had passed what it read on to the stream's readers).
// When each publishing session was last seen sending data (at least 1 KiB since; not just a ping answer).
const dataSeen = new Map();
// This thread's clock at the last count: silence is observed up to it (EDGE_SILENCE).
let lastCount = Date.now();
${EDGE_SILENCE}
setInterval(() => {
  const counts = [];
  const now = Date.now();
  const late = now - lastCount > 2 * ${COUNT_MS};
  lastCount = now;
  for (const s of context.sessions.values()) {
    if (!s.isPublishing) continue;
    counts.push([s.id, s.socket.bytesRead]);
    dataSeen.set(s.id, noteCount(dataSeen.get(s.id), s.socket.bytesRead, now, late));
  }
  // node-media-server writes every packet to every player without waiting for its socket to drain: a
  // player that reads nothing (or far too little) had the stream queue up in this process for as long
  // as it stayed connected (its writes kept its idle timeout from firing). One that fell this far
  // behind is dropped (a relay reader then reconnects at the live edge).
  for (const s of [...context.sessions.values()]) {
    if (s.isPlaying && s.socket.writableLength > workerData.limits.playerBacklog) {
      const err = new RangeError('RTMP player too far behind');
      err.code = 'RTMP_PLAYER_BEHIND';
      s.drop(err);
    }
  }
  // A connection that neither publishes nor plays RTMP_START_MS after its accept (one that never
  // handshakes, stops part way, or connects and idles) is closed: it held one of the edge's connections
  // for good. Not after a stall of this thread (late): the client's publish may wait unread in the kernel.
  let notStarted = 0;
  // (No startMs given to the thread: no deadline.)
  if (!late && workerData.startMs > 0) {
    for (const s of [...context.sessions.values()]) {
      if (s.acceptedAt === undefined || now - s.acceptedAt < workerData.startMs) continue;
      s.acceptedAt = undefined; // checked once: from here on it publishes (its key checked) or plays (its token checked)
      // A publish whose key check has not answered is kept (it stays in its address's pending count until
      // it does): the check waits on Redis, and closing it would cut a real encoder reconnecting during an
      // outage every RTMP_START_MS while its show rides the outage. The check's answer refuses a bad key.
      if (s.isPublishing || s.isPlaying || s.isIdling) continue;
      notStarted++;
      s.drop(); // counted, not reported one by one
    }
  }
  if (notStarted > 0) parentPort.postMessage({ type: 'notStarted', count: notStarted });
  if (overCap > 0) {
    parentPort.postMessage({ type: 'pendingOverCap', count: overCap, addresses: [...overCapAddresses] });
    overCap = 0;
    overCapAddresses.clear();
  }
  if (counts.length > 0) parentPort.postMessage({ type: 'received', counts, at: Date.now() });
}, ${COUNT_MS}).unref();
// A flood of connections takes at most its share of the process's file descriptors (connection-limits.ts).
if (workerData.maxConnections) server.maxConnections = workerData.maxConnections;
server.once('error', (err) => parentPort.postMessage({ type: 'listenError', message: err.message, code: err.code }));
server.listen(workerData.port, workerData.host, () => parentPort.postMessage({ type: 'listening', port: server.address().port }));
parentPort.on('message', (m) => {
  if (m.type === 'reject') {
    // Names the publish refused, as 'accepted' does: a slow refusal of the connection's earlier publish
    // (ended since: deleteStream) closed the connection, cutting the later publish whose key checked out.
    const s = context.sessions.get(m.id);
    if (s && s.publishes === m.n) s.reject();
  } else if (m.type === 'accepted') {
    const s = context.sessions.get(m.id);
    if (s && s.isPublishing && s.publishes === m.n) keyAccepted(s);
  } else if (m.type === 'close') {
    for (const s of context.sessions.values()) s.stop();
    for (const s of sockets) s.destroy();
    server.close(() => parentPort.postMessage({ type: 'closed' }));
  }
  // A message that asks (\`ack\`) is answered once handled (the tests wait for it).
  if (m.ack !== undefined) parentPort.postMessage({ type: 'handled', ack: m.ack });
});
`;

export const EDGE_APP = 'live';

/** What the edge's play keys are derived for from SECRETS_KEY (SecretBox.derivedKeys). */
export const EDGE_PLAY_LABEL = 'syndicast relay edge play v1';

/**
 * The token that lets a reader play `streamName` from an edge (the base64url HMAC-SHA256 of the name),
 * `playKey` the first of `box.derivedKeys(EDGE_PLAY_LABEL)`; the reader plays `{edgeUrl}/{streamName}?play={token}`.
 * (An external nginx edge ignores the query: it allows play by address, config/nginx-rtmp.conf.)
 */
export function edgePlayToken(playKey: Buffer, streamName: string): string {
  return createHmac('sha256', playKey).update(streamName).digest('base64url');
}

export interface EdgeOptions {
  port: number;
  host: string;
  relay: RelayRepository;
  shows: ShowRepository;
  log: Logger;
  /** Base URL relay processes read streams from; default `rtmp://127.0.0.1:{port}/live`. */
  internalUrl?: string;
  /** How often publishing shows are re-checked (a show that ended is cut off) and their sources renewed (default a fifth of sourceTtlMs, at most 2 s). */
  checkMs?: number;
  /** How long a source outlives its edge's last renewal (RELAY_SOURCE_TTL_MS; default the larger of 10 s and 5 × checkMs). */
  sourceTtlMs?: number;
  /** How long a publishing connection must have sent nothing before a new publish on its key takes over (default PUBLISH_TAKEOVER_MS). */
  publishTakeoverMs?: number;
  /** How long a connection may take from its accept to a publish or a play before it is closed (default RTMP_START_MS). */
  startMs?: number;
  /** Connections from one address that have neither published nor played, at most (RELAY_RTMP_PENDING_PER_ADDRESS; default RTMP_PENDING_PER_ADDRESS; 0: no cap). */
  pendingPerAddress?: number;
  /** Connections the edge holds at once (default maxRtmpConnections(): 1/8 of the open-files limit). */
  maxConnections?: number;
  /** The keys a play token may be signed with: `box.derivedKeys(EDGE_PLAY_LABEL)` (none: every play is refused). */
  playKeys: readonly Buffer[];
  /**
   * A show's publish was accepted and written as its source: this process's relay (if it owns the
   * show) starts the show's readers now instead of at its next pass (RelayService.wake).
   */
  onSource?: (show: { partnerId: string; showId: string }) => void;
}

export interface IngestEdge {
  port: number;
  /** `rtmp://…/live` that relay processes read from. */
  internalUrl: string;
  /**
   * When the publish a reader's `input` (`{internalUrl}/{key}`, with or without its `?play=` token) reads last sent the edge data, by the
   * edge thread's own clock (epoch ms; undefined: no accepted publish of that key here, or none sent
   * data yet). The edge passes what it reads on to the stream's readers at once, so a reader that
   * waits on its input while this moves on is one the edge does not serve
   * (src/relay/destination.supervisor.ts). A starved edge thread makes it stale, never early.
   */
  publisherDataAt(input: string): number | undefined;
  close(): Promise<void>;
}

/** A publish node-media-server accepted on one of the edge's sessions. */
interface Publish {
  key: string;
  /** This publish's own id in the show's source record (edge, session, publish). */
  session: string;
  /** Which publish of its connection it is (the edge thread's number; its 'accepted' names it). */
  n?: number;
  /** The show, once the key checked out (the publish is then the show's source). */
  show?: { partnerId: string; showId: string };
  since?: string;
  /** Bytes received on the publish's connection, and when that count last grew (epoch ms). */
  received: number;
  dataAt: number;
  /** When the edge thread last counted at least PUBLISH_DATA_MIN_BYTES new (its clock; 0: not yet). */
  sentAt: number;
  /** Since when nothing arrived (ISO), once that lasted STALL_NOTICE_MS; written to the source. */
  stalledSince?: string;
  /** Its codecs, once one is not what the platforms take (the edge's thread passes none of it on); written to the source. */
  codecsRefused?: { video: string | null; audio: string | null };
  /** Its codecs' refusal was logged (once per publish). */
  codecsWarned?: boolean;
}

/** A publish that received nothing for this long is reported stalled on its source (the relay then does not blame its destinations). */
const STALL_NOTICE_MS = 1500;
/**
 * The latest the edge writes a stalled publish's notice to its source after the publish's last data
 * reached the edge: the count that sees the data last grow comes up to one count interval later, the
 * notice STALL_NOTICE_MS after that count (then a Redis write). A reader of the stream got that data no
 * sooner, so this also bounds the notice from the reader's last progress; a relay process learns it at
 * its next pass (RELAY_POLL_MS) after the write (destination.supervisor.ts `stallNoticeMs`).
 */
export const EDGE_STALL_NOTICE_MS = STALL_NOTICE_MS + COUNT_MS;
/**
 * A new publish on a show's key takes the stream over from the connection that publishes it once that
 * one has sent no data for this long (a half-open encoder connection, which otherwise held the key for
 * good). A live encoder sends every frame; 5 s is far past any pause of one that still works.
 */
export const PUBLISH_TAKEOVER_MS = 5000;
/** Bytes a publish must send between two counts to count as sending (not just an RTMP ping answer or acknowledgement). */
const PUBLISH_DATA_MIN_BYTES = 1024;

/**
 * How often a publish's key check that Redis could not answer is tried again. A client that fails fast
 * (`npm start`'s: enableOfflineQueue off) rejects at once while Redis is down, where a queuing one (a
 * `relay` process's) waits: either way the publish is held, still pending, until Redis answers.
 */
export const PUBLISH_CHECK_RETRY_MS = 500;

const KEY_PATH = new RegExp(`^/${EDGE_APP}/([A-Za-z0-9_-]{8,200})$`);

/** Why a publish whose key names no show is refused. */
const UNKNOWN_KEY = 'unknown stream key';
/** Why a publish whose key checked out is cut off once the key names its show no more. */
const rotated = (showId: string): string => `show ${showId}'s stream key was rotated`;

/** How often an edge renews the sources of its publishes (and re-checks their shows) by default: a fifth of RELAY_SOURCE_TTL_MS, at most 2 s. */
export function edgeCheckMs(sourceTtlMs: number): number {
  return Math.min(2000, Math.floor(sourceTtlMs / 5));
}

export async function startIngestEdge(opts: EdgeOptions): Promise<IngestEdge> {
  const { relay, shows, log } = opts;
  const edgeId = randomBytes(4).toString('hex');
  /**
   * The publish each session of the edge's thread has running now (node-media-server accepted it; a
   * connection publishes one stream at a time), by session id. A publish is a new object: a check that
   * finishes after its publish ended (or was replaced by a later one on the same connection) sees that
   * and does nothing. `show` is set once its key checked out, and only then is it the show's source.
   */
  const publishing = new Map<string, Publish>();
  const worker = new Worker(EDGE_THREAD, {
    eval: true,
    workerData: { paths: NMS_PATHS, config: NMS_CONFIG, limits: RTMP_BUFFER_LIMITS, codecs: RELAY_CODECS, port: opts.port, host: opts.host, maxConnections: opts.maxConnections ?? maxRtmpConnections(), pendingPerAddress: opts.pendingPerAddress ?? RTMP_PENDING_PER_ADDRESS, playKeys: opts.playKeys.map((k) => k.toString('hex')), publishTakeoverMs: opts.publishTakeoverMs ?? PUBLISH_TAKEOVER_MS, startMs: opts.startMs ?? RTMP_START_MS },
  });
  let closing = false;
  let onClosed: (() => void) | undefined;
  let seq = 0;

  /** Refuses publish `n` of session `id` (the edge thread's number: a refusal that comes after the connection published again does nothing). */
  const refuse = (id: string, n: number | undefined, why: string): void => {
    log.info({ session: id, why }, 'ingest publish refused');
    worker.postMessage({ type: 'reject', id, n });
  };

  /** A publish that took over a show's stream from a connection that had sent nothing for `silentMs`: logged with the show (never the key). */
  const onPublishReplaced = (m: { id: string; by: string; path: string; silentMs: number }): void => {
    const k = KEY_PATH.exec(m.path);
    if (!k) return;
    relay.showOfKey(k[1]!).then(
      (show) => log.info({ session: m.id, by: m.by, partnerId: show?.partnerId, showId: show?.showId, silentMs: m.silentMs }, "ingest publish replaced: the connection publishing the show's stream had sent nothing, a new publish on its key took over"),
      () => undefined,
    );
  };
  /** A second encoder on a show's stream, refused by node-media-server: logged with the show (never the key). */
  const onPublishBusy = (id: string, path: string): void => {
    const m = KEY_PATH.exec(path);
    if (!m) return;
    relay.showOfKey(m[1]!).then(
      (show) => {
        if (show) log.info({ session: id, partnerId: show.partnerId, showId: show.showId, why: "the show's stream is already being published by another connection (one encoder per show)" }, 'ingest publish refused');
      },
      () => undefined,
    );
  };

  /** A publish in codecs the platforms do not take: one warning per publish, with its show (never its key), once the key checked out. */
  const warnCodecs = (id: string, p: Publish): void => {
    if (!p.show || !p.codecsRefused || p.codecsWarned) return;
    p.codecsWarned = true;
    log.warn(
      { partnerId: p.show.partnerId, showId: p.show.showId, session: id, videoCodec: p.codecsRefused.video, audioCodec: p.codecsRefused.audio, takes: RELAY_CODECS },
      "ingest publish not relayed: codec_unsupported (the platforms' RTMP ingest takes H.264 video and AAC audio); relaying starts when the encoder publishes again in those",
    );
  };
  const onCodecsRefused = (id: string, codecs: { video: string | null; audio: string | null }): void => {
    const p = publishing.get(id);
    if (!p) return;
    p.codecsRefused = codecs;
    const show = p.show;
    if (!show || closing) return; // its key check writes the source with them
    warnCodecs(id, p);
    relay.keepSource(show.partnerId, show.showId, sourceOf(p), sourceTtlMs).catch(() => undefined);
  };

  const onPostPublish = (id: string, path: string, n: number | undefined): void => {
    const m = KEY_PATH.exec(path);
    if (!m) return refuse(id, n, 'not /live/{streamKey}');
    const p: Publish = { key: m[1]!, n, session: `${edgeId}:${id}:${++seq}`, received: 0, dataAt: Date.now(), sentAt: 0 };
    publishing.set(id, p);
    const current = (): boolean => publishing.get(id) === p && !closing;
    // A step Redis cannot answer now (down, restarting) is tried again until it answers or the publish
    // ends: an encoder reconnecting during an outage is held (counted in its address's pending cap),
    // not refused, so its show's video resumes as soon as Redis does. Refused at once, it waited for
    // the encoder's next retry after the outage, and an encoder that gives up never came back.
    let waitLogged = false;
    const answered = async <T>(step: () => Promise<T>): Promise<T | undefined> => {
      for (;;) {
        try {
          return await step();
        } catch (err) {
          if (!isRedisUnreachable(err) || !current()) throw err;
          if (!waitLogged) log.warn({ session: id, err: { message: (err as Error).message } }, 'ingest publish check waits for Redis; the publish is held until it answers');
          waitLogged = true;
          await new Promise((r) => setTimeout(r, PUBLISH_CHECK_RETRY_MS));
          if (!current()) return undefined;
        }
      }
    };
    /** The show the publish's key is the current key of, or why it publishes nothing (unknown key, the show over). */
    const verdict = async (): Promise<{ show: { partnerId: string; showId: string } } | { why: string }> => {
      const show = await relay.showOfKey(p.key);
      if (!show) return { why: UNKNOWN_KEY };
      const desired = await shows.desired(show.partnerId, show.showId);
      if (!desired || desired.state === 'ended' || desired.state === 'cancelled') return { why: `show ${show.showId} is ${desired?.state ?? 'unknown'}` };
      return { show };
    };
    // node-media-server lets the publish start while we look the key up; a refusal cuts it off.
    void (async () => {
      const checked = await answered(verdict);
      if (!checked) return; // ended while Redis was away
      if ('why' in checked) return refuse(id, p.n, checked.why);
      if (!current()) return; // ended meanwhile
      const { show } = checked;
      p.show = show;
      p.since = new Date().toISOString();
      worker.postMessage({ type: 'accepted', id, n: p.n });
      // A write Redis did not answer is checked afresh before it is tried again: the show may have
      // ended (or its key been rotated) while the write was held, the partner's event going through as
      // soon as Redis answered it. Written without that check, the ended show's source was set, the
      // publish logged accepted and its relay woken, and it was cut off only at the edge's next check.
      let tried = false;
      const written = await answered(async (): Promise<true | string> => {
        if (tried) {
          // A key that checked out and now names no show was rotated (the old key is dropped): said so as
          // the periodic check says it. A key names one show for good, so no other show can answer it.
          const again = await verdict();
          if ('why' in again) return again.why === UNKNOWN_KEY ? rotated(show.showId) : again.why;
        }
        tried = true;
        await relay.setSourceFor(show.partnerId, show.showId, sourceOf(p), sourceTtlMs);
        return true;
      });
      // The encoder left while Redis was away: not accepted, no onSource for a publish that is gone.
      if (written === undefined) return;
      if (written !== true) return cutOff(id, p, show, written);
      log.info({ partnerId: show.partnerId, showId: show.showId, session: id }, 'ingest publish accepted');
      warnCodecs(id, p);
      opts.onSource?.(show);
    })().catch((err: unknown) => {
      log.warn({ err: { message: (err as Error).message } }, 'ingest publish check failed; refusing');
      refuse(id, p.n, 'check failed');
    });
  };
  const sourceOf = (p: Publish): RelaySource => ({
    edgeUrl: internalUrl,
    session: p.session,
    since: p.since!,
    ...(p.stalledSince ? { stalledSince: p.stalledSince } : {}),
    ...(p.codecsRefused ? { codecsRefused: p.codecsRefused } : {}),
  });
  /** The edge thread's byte counts: a publish whose count stands still is stalled; its source says so at once, and again once data flows. */
  const onReceived = (counts: [string, number][], at: number): void => {
    const now = Date.now();
    for (const [id, bytes] of counts) {
      const p = publishing.get(id);
      if (!p) continue;
      const before = p.stalledSince;
      if (bytes - p.received >= PUBLISH_DATA_MIN_BYTES) p.sentAt = Math.max(p.sentAt, at);
      if (bytes > p.received) {
        p.received = bytes;
        p.dataAt = now;
        p.stalledSince = undefined;
      } else if (!p.stalledSince && now - p.dataAt >= STALL_NOTICE_MS) {
        p.stalledSince = new Date(p.dataAt).toISOString();
        log.info({ session: id, showId: p.show?.showId }, 'ingest publish stalled (connected, sending nothing)');
      }
      const show = p.show;
      if (show && before !== p.stalledSince && !closing) {
        relay.keepSource(show.partnerId, show.showId, sourceOf(p), sourceTtlMs).catch(() => undefined);
      }
    }
  };
  const onDonePublish = (id: string): void => {
    const p = publishing.get(id);
    if (!p) return;
    publishing.delete(id);
    const show = p.show;
    if (!show) return;
    relay.clearSource(show.partnerId, show.showId, p.session).then(
      () => log.info({ partnerId: show.partnerId, showId: show.showId, session: id }, 'ingest publish ended'),
      (err: unknown) => log.warn({ err: { message: (err as Error).message } }, 'could not clear the relay source'),
    );
  };

  const port = await new Promise<number>((resolve, reject) => {
    worker.on('message', (m: FromEdge) => {
      switch (m.type) {
        case 'listening':
          return resolve(m.port);
        case 'listenError':
          // The thread would otherwise stay alive (and keep this process up) after the edge failed.
          closing = true;
          void worker.terminate().catch(() => undefined);
          return reject(Object.assign(new Error(m.message), { code: m.code }));
        case 'postPublish':
          return onPostPublish(m.id, m.path, m.n);
        case 'received':
          return onReceived(m.counts, m.at);
        case 'donePublish':
        case 'gone':
          return onDonePublish(m.id);
        case 'publishBusy':
          return onPublishBusy(m.id, m.path);
        case 'publishReplaced':
          return onPublishReplaced(m);
        case 'codecsRefused':
          return onCodecsRefused(m.id, { video: m.video, audio: m.audio });
        case 'notStarted':
          return log.warn({ count: m.count, afterMs: opts.startMs ?? RTMP_START_MS }, 'ingest connections closed: they neither published nor played in time');
        case 'pendingOverCap':
          return log.warn({ count: m.count, addresses: m.addresses, pendingPerAddress: opts.pendingPerAddress ?? RTMP_PENDING_PER_ADDRESS }, 'ingest connections refused: their address already has as many connections that have neither published nor played as it may (RELAY_RTMP_PENDING_PER_ADDRESS)');
        case 'playRefused':
          return log.info({ session: m.id }, 'ingest play refused: no valid play token (the stream key alone does not play)');
        case 'sessionError':
          return log.warn({ session: m.id, err: { name: m.name, code: m.code, at: m.at } }, 'ingest session dropped: node-media-server failed on what the client sent, or the client read too little of the stream');
        case 'closed':
          return onClosed?.();
      }
    });
    worker.once('error', (err) => {
      reject(err);
      if (closing) return;
      // node-media-server threw in the edge's thread: with the edge gone this process can relay no
      // publish, so it fails like it did when the edge ran on the main thread (a supervisor restarts it).
      log.error({ err: { message: err.message } }, 'ingest edge thread failed');
      setImmediate(() => {
        throw err;
      });
    });
    worker.once('exit', (code) => {
      if (closing) return;
      // The thread ended without an error event (it should only end when asked to close): the edge is
      // gone all the same, so fail as above rather than stay up relaying nothing.
      const err = new Error(`ingest edge thread exited (code ${code})`);
      reject(err);
      log.error({ code }, 'ingest edge thread exited');
      setImmediate(() => {
        throw err;
      });
    });
  });
  const sourceTtlMs = opts.sourceTtlMs ?? Math.max(10_000, 5 * (opts.checkMs ?? 2000));
  const checkMs = opts.checkMs ?? edgeCheckMs(sourceTtlMs);
  const internalUrl = (opts.internalUrl ?? `rtmp://127.0.0.1:${port}/${EDGE_APP}`).replace(/\/+$/, '');

  // A publish whose show ended or was cancelled, or whose key is no longer the show's current one
  // (rotated: "the old one is refused from then on"), is cut off, and its show no longer has it as source.
  const cutOff = (id: string, p: Publish, show: { partnerId: string; showId: string }, why: string): void => {
    if (publishing.get(id) !== p) return;
    publishing.delete(id);
    refuse(id, p.n, why);
    relay.clearSource(show.partnerId, show.showId, p.session).catch((err: unknown) => log.warn({ err: { message: (err as Error).message } }, 'could not clear the relay source'));
  };
  const check = setInterval(() => {
    for (const [id, p] of publishing) {
      const show = p.show;
      if (!show) continue;
      Promise.all([shows.desired(show.partnerId, show.showId), relay.showOfKey(p.key)]).then(
        async ([d, current]) => {
          if (!d || d.state === 'ended' || d.state === 'cancelled') return cutOff(id, p, show, `show ${show.showId} is ${d?.state ?? 'gone'}`);
          if (current?.partnerId !== show.partnerId || current.showId !== show.showId) return cutOff(id, p, show, rotated(show.showId));
          // This edge is alive and the publish still runs: its source lives on (only a dead edge's lapses).
          if (publishing.get(id) === p && !closing) await relay.keepSource(show.partnerId, show.showId, sourceOf(p), sourceTtlMs);
        },
        () => undefined,
      ).catch(() => undefined);
    }
  }, checkMs);
  check.unref();

  log.info({ port }, 'ingest edge listening');
  return {
    port,
    internalUrl,
    publisherDataAt: (input) => {
      if (!input.startsWith(`${internalUrl}/`)) return undefined;
      const key = input.slice(internalUrl.length + 1).split('?')[0];
      let at = 0;
      for (const p of publishing.values()) if (p.show && p.key === key && p.sentAt > at) at = p.sentAt;
      return at > 0 ? at : undefined;
    },
    close: async () => {
      clearInterval(check);
      closing = true;
      await Promise.all(
        [...publishing.values()].map((p) => (p.show ? relay.clearSource(p.show.partnerId, p.show.showId, p.session).catch(() => undefined) : undefined)),
      );
      publishing.clear();
      // The thread stops its sessions and closes its listener; terminated after at most 5 s either way.
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 5000);
        onClosed = () => {
          clearTimeout(t);
          resolve();
        };
        worker.postMessage({ type: 'close' });
      });
      await worker.terminate();
    },
  };
}

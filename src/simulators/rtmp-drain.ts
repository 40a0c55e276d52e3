/**
 * A minimal RTMP ingest that accepts any publish and only drains its bytes: the handshake, the
 * commands up to `publish` (`connect`, `createStream`, `publish` answered; the rest ignored), then
 * no parsing at all, only a byte count and timestamps per `{app}/{stream key}`.
 *
 * Used where the receiver must cost next to nothing and not share an event loop with anything else
 * (the relay benchmark runs it in its own process: with node-media-server's full RTMP parsing of
 * 100 × 2 Mbps inside the bench process, the sinks were the slow part, and ffmpeg's timeouts fired
 * on them), and by tests that need a receiver that reads slowly on purpose (`readBytesPerSecond`).
 * The simulators' own sinks (rtmp-sink.ts) stay what the platforms look like; this is not one.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { noteArrival } from './rtmp-sink.js';

const HANDSHAKE_SIZE = 1536;
const MAX_COMMAND_BYTES = 64 * 1024;
/**
 * The chunk size announced on `connect` (Set Chunk Size), as every RTMP ingest does (node-media-server,
 * so the simulators' sinks and the relay's edge: 60000; nginx-rtmp: 4096). ffmpeg publishing to a server
 * takes the server's chunk size as its own and keeps RTMP's default of 128 bytes otherwise: two `send`
 * calls (and two `poll`s) per 128 bytes of video, ~8,000 syscalls a second for a 2 Mbps stream, which
 * doubled the CPU of every destination's ffmpeg in the relay benchmark and was the receiver's doing.
 */
export const DRAIN_CHUNK_SIZE = 60_000;

export interface DrainStreamView {
  /** `{app}/{stream key}` as published. */
  id: string;
  publishing: boolean;
  publishes: number;
  bytes: number;
  firstDataAt: number | null;
  lastDataAt: number | null;
  maxGapMs: number;
  longGaps: Array<{ endedAt: number; ms: number }>;
  /** The chunk size the publisher sends in (its Set Chunk Size before `publish`; RTMP's default 128 without one). */
  chunkSize: number;
}

export interface DrainOptions {
  host?: string;
  port?: number;
  /**
   * Read at most this many bytes per second per connection once publishing (the socket is paused in
   * between): a receiver that is slow but reads. Unset: read as fast as the data comes.
   */
  readBytesPerSecond?: number;
}

// --- AMF0, only what the handful of commands needs ----------------------------------------------

type Amf = string | number | boolean | null | { [k: string]: Amf };

function amfEncode(v: Amf): Buffer {
  if (v === null) return Buffer.from([0x05]);
  if (typeof v === 'number') {
    const b = Buffer.alloc(9);
    b[0] = 0x00;
    b.writeDoubleBE(v, 1);
    return b;
  }
  if (typeof v === 'boolean') return Buffer.from([0x01, v ? 1 : 0]);
  if (typeof v === 'string') {
    const s = Buffer.from(v, 'utf8');
    const h = Buffer.alloc(3);
    h[0] = 0x02;
    h.writeUInt16BE(s.length, 1);
    return Buffer.concat([h, s]);
  }
  const parts: Buffer[] = [Buffer.from([0x03])];
  for (const [k, x] of Object.entries(v)) {
    const kb = Buffer.from(k, 'utf8');
    const kl = Buffer.alloc(2);
    kl.writeUInt16BE(kb.length);
    parts.push(kl, kb, amfEncode(x));
  }
  parts.push(Buffer.from([0, 0, 0x09]));
  return Buffer.concat(parts);
}

/** Decodes the values of a command message; stops quietly at anything it does not know. */
function amfDecodeAll(buf: Buffer): Amf[] {
  const out: Amf[] = [];
  let pos = 0;
  const str = (): string => {
    const n = buf.readUInt16BE(pos);
    const s = buf.toString('utf8', pos + 2, pos + 2 + n);
    pos += 2 + n;
    return s;
  };
  const value = (): Amf => {
    const t = buf[pos++];
    switch (t) {
      case 0x00: {
        const n = buf.readDoubleBE(pos);
        pos += 8;
        return n;
      }
      case 0x01:
        return buf[pos++] !== 0;
      case 0x02:
        return str();
      case 0x05:
      case 0x06:
        return null;
      case 0x03:
      case 0x08: {
        if (t === 0x08) pos += 4; // ECMA array: count, then as an object
        const o: { [k: string]: Amf } = Object.create(null) as { [k: string]: Amf };
        for (;;) {
          const k = str();
          if (buf[pos] === 0x09) {
            pos += 1;
            return o;
          }
          o[k] = value();
        }
      }
      default:
        throw new Error(`AMF0 type ${String(t)}`);
    }
  };
  try {
    while (pos < buf.length) out.push(value());
  } catch {
    // the values read so far are all a command needs
  }
  return out;
}

/** One RTMP message as chunks of `chunkSize` on chunk stream 3. */
function rtmpMessage(type: number, streamId: number, payload: Buffer, chunkSize = 128): Buffer {
  const h = Buffer.alloc(12);
  h[0] = 0x03; // fmt 0, csid 3
  h.writeUIntBE(0, 1, 3);
  h.writeUIntBE(payload.length, 4, 3);
  h[7] = type;
  h.writeUInt32LE(streamId, 8);
  const parts: Buffer[] = [h];
  for (let i = 0; i < payload.length; i += chunkSize) {
    if (i > 0) parts.push(Buffer.from([0xc3]));
    parts.push(payload.subarray(i, i + chunkSize));
  }
  return Buffer.concat(parts);
}

/** A command message, in chunks of the size the drain announced first thing on `connect`. */
function command(streamId: number, ...values: Amf[]): Buffer {
  return rtmpMessage(20, streamId, Buffer.concat(values.map(amfEncode)), DRAIN_CHUNK_SIZE);
}

function control(type: number, value: number, extra?: number): Buffer {
  const p = Buffer.alloc(extra === undefined ? 4 : 5);
  p.writeUInt32BE(value);
  if (extra !== undefined) p[4] = extra;
  const h = Buffer.alloc(12);
  h[0] = 0x02; // fmt 0, csid 2 (protocol control)
  h.writeUIntBE(p.length, 4, 3);
  h[7] = type;
  return Buffer.concat([h, p]);
}

// --- one connection -----------------------------------------------------------------------------

interface ChunkStream {
  type: number;
  length: number;
  streamId: number;
  extended: boolean;
  body: Buffer[];
  got: number;
}

class DrainConnection {
  private buf: Buffer = Buffer.alloc(0);
  private phase: 'c0c1' | 'c2' | 'chunks' | 'drain' = 'c0c1';
  private chunkSize = 128;
  private readonly streams = new Map<number, ChunkStream>();
  private app = '';
  private stream: DrainStreamView | undefined;
  private commandBytes = 0;

  constructor(
    private readonly socket: Socket,
    private readonly sink: RtmpDrain,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('error', () => undefined);
    socket.once('close', () => {
      if (this.stream) this.sink.ended(this.stream);
    });
  }

  private onData(d: Buffer): void {
    if (this.phase === 'drain') return this.sink.data(this.stream!, d.length, this.socket);
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    try {
      this.advance();
    } catch {
      this.socket.destroy();
    }
  }

  private advance(): void {
    if (this.phase === 'c0c1') {
      if (this.buf.length < 1 + HANDSHAKE_SIZE) return;
      const c1 = this.buf.subarray(1, 1 + HANDSHAKE_SIZE);
      const s1 = Buffer.alloc(HANDSHAKE_SIZE); // time 0, version 0: ffmpeg validates no digest then
      this.socket.write(Buffer.concat([Buffer.from([0x03]), s1, c1]));
      this.buf = this.buf.subarray(1 + HANDSHAKE_SIZE);
      this.phase = 'c2';
    }
    if (this.phase === 'c2') {
      if (this.buf.length < HANDSHAKE_SIZE) return;
      this.buf = this.buf.subarray(HANDSHAKE_SIZE);
      this.phase = 'chunks';
    }
    while (this.phase === 'chunks' && this.readChunk());
    if (this.phase === 'drain' && this.buf.length) {
      const rest = this.buf.length;
      this.buf = Buffer.alloc(0);
      this.sink.data(this.stream!, rest, this.socket);
    }
  }

  /** Reads one chunk if complete; false when more bytes are needed. */
  private readChunk(): boolean {
    const b = this.buf;
    if (b.length < 1) return false;
    const fmt = b[0]! >> 6;
    let csid = b[0]! & 0x3f;
    let p = 1;
    if (csid === 0) {
      if (b.length < 2) return false;
      csid = 64 + b[1]!;
      p = 2;
    } else if (csid === 1) {
      if (b.length < 3) return false;
      csid = 64 + b[1]! + b[2]! * 256;
      p = 3;
    }
    const hlen = [11, 7, 3, 0][fmt]!;
    if (b.length < p + hlen) return false;
    const prev = this.streams.get(csid);
    const cs: ChunkStream = prev ?? { type: 0, length: 0, streamId: 0, extended: false, body: [], got: 0 };
    let ts = 0;
    if (fmt <= 2) ts = b.readUIntBE(p, 3);
    let length = cs.length;
    let type = cs.type;
    let streamId = cs.streamId;
    if (fmt <= 1) {
      length = b.readUIntBE(p + 3, 3);
      type = b[p + 6]!;
    }
    if (fmt === 0) streamId = b.readUInt32LE(p + 7);
    p += hlen;
    const extended = fmt <= 2 ? ts === 0xffffff : cs.extended;
    if (extended) {
      if (b.length < p + 4) return false;
      p += 4;
    }
    const starting = cs.got === 0;
    const want = Math.min(this.chunkSize, (starting ? length : cs.length) - cs.got);
    if (b.length < p + want) return false;
    if (starting) {
      cs.length = length;
      cs.type = type;
      cs.streamId = streamId;
    }
    cs.extended = extended;
    cs.body.push(b.subarray(p, p + want));
    cs.got += want;
    this.commandBytes += p + want;
    if (this.commandBytes > MAX_COMMAND_BYTES) throw new Error('too much before publish');
    this.streams.set(csid, cs);
    this.buf = b.subarray(p + want);
    if (cs.got >= cs.length) {
      const body = Buffer.concat(cs.body);
      cs.body = [];
      cs.got = 0;
      this.message(cs.type, cs.streamId, body);
    }
    return true;
  }

  private message(type: number, streamId: number, body: Buffer): void {
    if (type === 1 && body.length >= 4) {
      this.chunkSize = body.readUInt32BE(0) & 0x7fffffff;
      return;
    }
    if (type !== 20) return;
    const [name, txn, ...args] = amfDecodeAll(body);
    const id = typeof txn === 'number' ? txn : 0;
    if (name === 'connect') {
      const obj = args[0];
      this.app = obj && typeof obj === 'object' && typeof obj.app === 'string' ? obj.app.replace(/\/+$/, '') : '';
      this.socket.write(
        Buffer.concat([
          control(1, DRAIN_CHUNK_SIZE), // set chunk size: ffmpeg pushes in chunks of the size its server sets
          control(5, 5_000_000), // window acknowledgement size
          control(6, 5_000_000, 2), // set peer bandwidth (dynamic)
          command(0, '_result', id, { fmsVer: 'FMS/3,0,1,123', capabilities: 31 }, { level: 'status', code: 'NetConnection.Connect.Success', description: 'Connection succeeded.', objectEncoding: 0 }),
        ]),
      );
    } else if (name === 'createStream') {
      this.socket.write(command(0, '_result', id, null, 1));
    } else if (name === 'publish') {
      const key = typeof args[1] === 'string' ? args[1] : '';
      this.socket.write(command(streamId || 1, 'onStatus', 0, null, { level: 'status', code: 'NetStream.Publish.Start', description: `${key} is now published.` }));
      this.stream = this.sink.published(`${this.app}/${key}`, this.chunkSize);
      this.phase = 'drain';
    }
  }
}

// --- the server ---------------------------------------------------------------------------------

export class RtmpDrain {
  private readonly keys = new Map<string, DrainStreamView & { open: number }>();
  private readonly sockets = new Set<Socket>();
  private readonly throttled = new Map<Socket, { budget: number }>();
  private throttleTimer: NodeJS.Timeout | undefined;
  port = 0;

  private constructor(
    private readonly server: Server,
    private readonly opts: DrainOptions,
  ) {}

  static async start(opts: DrainOptions = {}): Promise<RtmpDrain> {
    const server = createServer();
    const drain = new RtmpDrain(server, opts);
    server.on('connection', (socket) => {
      drain.sockets.add(socket);
      if (drain.frozen) socket.pause();
      socket.once('close', () => {
        drain.sockets.delete(socket);
        drain.throttled.delete(socket);
      });
      new DrainConnection(socket, drain);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
    });
    drain.port = (server.address() as AddressInfo).port;
    if (opts.readBytesPerSecond) {
      // 10 refills a second: the socket is resumed while it has budget and paused once it is spent
      drain.throttleTimer = setInterval(() => {
        // a read can take more than a tick's budget (libuv reads up to 64 KiB): the debt carries over
        for (const [socket, t] of drain.throttled) {
          t.budget = Math.min(opts.readBytesPerSecond! / 10, t.budget + opts.readBytesPerSecond! / 10);
          if (t.budget > 0 && !drain.frozen) socket.resume();
        }
      }, 100);
      drain.throttleTimer.unref();
    }
    return drain;
  }

  /** Stop reading every connection from now on (a receiver that froze: its sockets fill up and stay full). */
  freeze(): void {
    this.frozen = true;
    for (const s of this.sockets) s.pause();
  }

  private frozen = false;

  get url(): string {
    return `rtmp://${this.opts.host ?? '127.0.0.1'}:${this.port}`;
  }

  /** @internal */ published(id: string, chunkSize: number): DrainStreamView {
    let st = this.keys.get(id);
    if (!st) {
      st = { id, publishing: true, publishes: 0, bytes: 0, firstDataAt: null, lastDataAt: null, maxGapMs: 0, longGaps: [], chunkSize, open: 0 };
      this.keys.set(id, st);
    }
    st.chunkSize = chunkSize;
    st.publishes += 1;
    st.open += 1;
    st.publishing = true;
    return st;
  }

  /** @internal */ ended(v: DrainStreamView): void {
    const st = this.keys.get(v.id);
    if (!st) return;
    st.open = Math.max(0, st.open - 1);
    st.publishing = st.open > 0;
  }

  /** @internal */ data(v: DrainStreamView, n: number, socket: Socket): void {
    noteArrival(v, Date.now(), (at) => at); // gaps as the simulators' sinks count them
    v.bytes += n;
    const rate = this.opts.readBytesPerSecond;
    if (rate) {
      let t = this.throttled.get(socket);
      if (!t) {
        t = { budget: rate / 10 };
        this.throttled.set(socket, t);
      }
      t.budget -= n;
      if (t.budget <= 0) socket.pause();
    }
  }

  list(): DrainStreamView[] {
    return [...this.keys.values()].map(({ open: _open, longGaps, ...v }) => ({ ...v, longGaps: [...longGaps] }));
  }

  /** Whether some data arrived on each key within `idleMs` (the simulators' `receiving`). */
  receiving(idleMs: number, now = Date.now()): Map<string, boolean> {
    return new Map([...this.keys.values()].map((v) => [v.id, v.lastDataAt !== null && now - v.lastDataAt <= idleMs]));
  }

  async close(): Promise<void> {
    if (this.throttleTimer) clearInterval(this.throttleTimer);
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

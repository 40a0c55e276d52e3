/**
 * A destination that reads slowly is not a dead one (the relay benchmark's restart storm, docs/benchmarks.md
 * "Video relay"): a real ffmpeg pushes a ~1.5 Mbps stream over RTMP to a receiver that takes only
 * 20 KB/s. ffmpeg then waits seconds for its socket to become writable before each write (Linux signals
 * "writable" only once a third of the send buffer is free), so neither its progress nor a write moves
 * for longer than the old 5 s output `-rw_timeout` (ffmpeg gave up: "Connection timed out") and the
 * stall timer, although the receiver reads all along. It must be left alone; a receiver that stops
 * reading altogether must still be restarted. Real ffmpeg, real TCP; the receiver is the minimal RTMP
 * drain (src/simulators/rtmp-drain.ts) with its reading throttled or frozen.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';
import { join } from 'node:path';
import pino from 'pino';
import { DestinationSupervisor } from '../../src/relay/destination.supervisor.js';
import { DRAIN_CHUNK_SIZE, RtmpDrain } from '../../src/simulators/rtmp-drain.js';
import { testFfmpeg, writeTestPatternFile } from '../helpers/ffmpeg.js';
import { waitFor } from '../helpers/service.js';

let dir: string;
let input: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'syndicast-slowdest-'));
  input = join(dir, 'pattern.flv');
  writeTestPatternFile(input, { seconds: 60, videoBitrate: '1500k' });
}, 60_000);

function supervise(output: string, stallMs: number, o: { realtime?: boolean; inputArgs?: string[] } = {}): DestinationSupervisor {
  return new DestinationSupervisor(
    { input, output, secrets: [] },
    {
      ffmpeg: testFfmpeg(),
      log: pino({ level: 'silent' }),
      stallMs,
      startTimeoutMs: 15_000,
      realtimeInput: o.realtime ?? true,
      ...(o.inputArgs ? { inputArgs: o.inputArgs } : {}),
      mayStart: async () => true,
      onStateChange: () => undefined,
      backoffBaseMs: 200,
      backoffCapMs: 400,
    },
  );
}

// The two cases run at once (test.concurrent): each has its own receiver and ffmpeg, and spends its time
// waiting (four 8 s windows of a slow push; a frozen receiver's 8 s).
test.concurrent('a destination that reads slowly (20 KB/s of a ~1.5 Mbps push) is never restarted, and keeps receiving', async () => {
  const drain = await RtmpDrain.start({ readBytesPerSecond: 20_000 });
  const sup = supervise(`${drain.url}/youtube/slow`, 6000); // RELAY_STALL_MS' default
  sup.start();
  try {
    await waitFor(async () => sup.status.state === 'sending', 15_000);
    const bytesAt = (): number => drain.list().find((v) => v.id === 'youtube/slow')?.bytes ?? 0;
    let before = bytesAt();
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 8000));
      const now = bytesAt();
      expect({ restarts: sup.status.restarts, lastError: sup.status.lastError, received: now > before }).toEqual({ restarts: 0, lastError: null, received: true });
      before = now;
    }
    expect(drain.list().find((v) => v.id === 'youtube/slow')?.publishes).toBe(1);
  } finally {
    await sup.stop();
    await drain.close();
  }
}, 80_000);

test.concurrent('a destination that stops reading altogether is still restarted', async () => {
  const drain = await RtmpDrain.start();
  // The input read as fast as ffmpeg can (no `-re`), looped so it never ends: the socket buffers below
  // fill within a second instead of at the stream's rate (tens of seconds with `-re`).
  const sup = supervise(`${drain.url}/youtube/frozen`, 2000, { realtime: false, inputArgs: ['-stream_loop', '-1'] });
  sup.start();
  try {
    await waitFor(async () => sup.status.state === 'sending', 15_000);
    drain.freeze();
    const frozenAt = Date.now();
    // The kernel still takes bytes into the frozen receiver's socket buffer (loopback autotunes it to
    // megabytes) and ffmpeg's into its own: progress goes on until both are full (tens of seconds at
    // the stream's ~190 KB/s; about a second read as fast as it goes), then the 8 s limit runs.
    await waitFor(async () => sup.status.restarts >= 1, 100_000);
    // the watchdog (4 × the stall time of a destination that takes nothing), not ffmpeg's own write timeout
    expect(sup.status.lastError).toMatch(/the destination took no data for 8 s/);
    expect(Date.now() - frozenAt).toBeGreaterThanOrEqual(8000);
  } finally {
    await sup.stop();
    await drain.close();
  }
}, 130_000);

// The drain itself (the relay benchmark's destination sinks): it announces its chunk size on `connect`, as
// node-media-server and nginx-rtmp do. ffmpeg publishing to a server takes the server's chunk size as its
// own (and sends it back); without the announcement it kept RTMP's default of 128 bytes, two `send` and two
// `poll` calls per 128 bytes (~8,000 syscalls a second at 2 Mbps), which doubled every destination ffmpeg's
// CPU in the benchmark, ours and bare alike, and saturated a 2-core VM at 100 streams (docs/benchmarks.md
// "0 / 100 on both sides (2026-12-05)"). One second of a small test pattern.
test.concurrent('ffmpeg pushes to the drain in the chunk size the drain announced, not in 128-byte chunks', async () => {
  const drain = await RtmpDrain.start();
  try {
    await promisify(execFile)(testFfmpeg(), [
      '-hide_banner', '-nostdin', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=160x90:rate=10', '-t', '1',
      '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-f', 'flv', `${drain.url}/youtube/chunks`,
    ], { timeout: 20_000 });
    const v = drain.list().find((x) => x.id === 'youtube/chunks');
    expect({ chunkSize: v?.chunkSize, received: (v?.bytes ?? 0) > 0 }).toEqual({ chunkSize: DRAIN_CHUNK_SIZE, received: true });
  } finally {
    await drain.close();
  }
}, 30_000);

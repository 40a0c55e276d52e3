/**
 * The minimal RTMP drain (src/simulators/rtmp-drain.ts, the relay benchmark's destination sinks) announces
 * its chunk size on `connect`, as node-media-server and nginx-rtmp do. ffmpeg publishing to a server takes
 * the server's chunk size as its own (and sends it back); without the announcement it kept RTMP's default
 * of 128 bytes: two `send` calls and two `poll`s per 128 bytes, ~8,000 syscalls a second for a 2 Mbps
 * push, which doubled the CPU of every destination's ffmpeg in the benchmark (ours and bare alike) and
 * saturated a 2-core VM at 100 streams (docs/benchmarks.md "Video relay: the sinks' chunk size").
 * Real ffmpeg, real TCP, one second of a small test pattern.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { DRAIN_CHUNK_SIZE, RtmpDrain } from '../../src/simulators/rtmp-drain.js';
import { testFfmpeg } from '../helpers/ffmpeg.js';

test('ffmpeg pushes to the drain in the chunk size the drain announced, not in 128-byte chunks', async () => {
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

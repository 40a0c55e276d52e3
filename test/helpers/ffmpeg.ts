/**
 * A real encoder for video tests: ffmpeg publishing a generated test pattern with sound (H.264 + AAC,
 * `-re` so it runs at real time) to an RTMP address. The binary is resolved like the relay's
 * (src/lib/ffmpeg-path.ts: FFMPEG_PATH → ffmpeg on PATH → @ffmpeg-installer's).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { loadConfig } from '../../src/config/config.js';
import { ffmpegPath } from '../../src/lib/ffmpeg-path.js';

export interface Publisher {
  child: ChildProcess;
  /** Resolves with ffmpeg's exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  /** ffmpeg's stderr so far (errors only, `-loglevel error`). */
  stderr(): string;
  /** SIGTERM (ffmpeg closes the stream cleanly) and wait for the exit. */
  stop(): Promise<number | null>;
}

export interface PublishOptions {
  /** Full RTMP target: `${ingest.url}/${ingest.streamKey}`. */
  target: string;
  /** Length of the test pattern; omit for "until stopped". */
  seconds?: number;
  /** Video bitrate, e.g. '1500k'. */
  videoBitrate?: string;
  size?: string;
  rate?: number;
  /** The video codec (default H.264); `none`: no video. FLV1 (Sorenson H.263) is one the platforms do not take. */
  videoCodec?: 'h264' | 'flv1' | 'none';
  /** The audio codec (default AAC); `none`: no audio. MP3 is one the platforms do not take. */
  audioCodec?: 'aac' | 'mp3' | 'none';
}

export function testFfmpeg(): string {
  return ffmpegPath(loadConfig(undefined, '/nonexistent').ffmpegPath);
}

/** The ffmpeg arguments of a test-pattern publisher (also used by the relay benchmark). */
export function testPatternArgs(o: PublishOptions): string[] {
  const size = o.size ?? '640x360';
  const rate = o.rate ?? 30;
  const br = o.videoBitrate ?? '1500k';
  const video = o.videoCodec ?? 'h264';
  const audio = o.audioCodec ?? 'aac';
  return [
    '-hide_banner', '-nostdin', '-loglevel', 'error',
    '-re',
    ...(video !== 'none' ? ['-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=${rate}`] : []),
    ...(audio !== 'none' ? ['-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100'] : []),
    ...(o.seconds !== undefined ? ['-t', String(o.seconds)] : []),
    ...(video === 'h264' ? ['-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-pix_fmt', 'yuv420p'] : []),
    ...(video === 'flv1' ? ['-c:v', 'flv', '-pix_fmt', 'yuv420p'] : []),
    ...(video !== 'none' ? ['-b:v', br, '-maxrate', br, '-bufsize', br, '-g', String(rate)] : []),
    ...(audio === 'aac' ? ['-c:a', 'aac', '-b:a', '96k'] : []),
    ...(audio === 'mp3' ? ['-c:a', 'libmp3lame', '-b:a', '96k'] : []),
    '-f', 'flv', o.target,
  ];
}

/** A small test-pattern FLV file (320x180, 25 fps, H.264 + AAC) for relay tests to read as their input. */
export function writeTestPatternFile(path: string, o: { seconds: number; videoBitrate: string }): void {
  execFileSync(testFfmpeg(), [
    '-hide_banner', '-nostdin', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=25', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100',
    '-t', String(o.seconds), '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-b:v', o.videoBitrate, '-g', '25', '-c:a', 'aac', '-b:a', '64k', '-f', 'flv', path,
  ]);
}

export function publishTestPattern(o: PublishOptions): Publisher {
  const child = spawn(testFfmpeg(), testPatternArgs(o), { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    err = (err + d).slice(-8000);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    exited,
    stderr: () => err,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

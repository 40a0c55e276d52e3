/**
 * Which ffmpeg binary the relay (and the simulators' tests and the relay benchmark) runs (issue 10 item 6):
 *   1. `FFMPEG_PATH` (config `ffmpegPath`, read in src/config and passed in here), when it runs as ffmpeg
 *      (else the start stops naming it);
 *   2. `ffmpeg` on PATH (Debian's `apt-get install ffmpeg`, the better-maintained build);
 *   3. the static linux-x64 binary that @ffmpeg-installer/ffmpeg ships inside its npm platform package
 *      (no download at install time), so `npm install && npm start` relays video on a machine with only Node.js.
 * The PATH lookup runs `ffmpeg -version` rather than reading PATH (the environment is read only in src/config).
 */
import { spawnSync } from 'node:child_process';
import { accessSync, chmodSync, constants } from 'node:fs';
import { createRequire } from 'node:module';

export type FfmpegSource = 'config' | 'path' | 'npm';
export interface FfmpegResolution {
  /** What to spawn: an absolute path, or `ffmpeg` for the one found on PATH. */
  path: string;
  source: FfmpegSource;
}

export class FfmpegNotFoundError extends Error {
  constructor(configured?: string) {
    super(
      configured === undefined
        ? 'no ffmpeg found: set FFMPEG_PATH, install ffmpeg (apt-get install ffmpeg), or reinstall npm dependencies (@ffmpeg-installer/ffmpeg ships one for linux-x64)'
        : `FFMPEG_PATH=${configured} does not run as ffmpeg (\`${configured} -version\` failed or printed no ffmpeg version): set it to the ffmpeg binary, or unset it to use ffmpeg on PATH or the one @ffmpeg-installer/ffmpeg ships`,
    );
    this.name = 'FfmpegNotFoundError';
  }
}

/** True when `cmd -version` runs, exits 0 and says it is ffmpeg (`/bin/true` would pass the exit status alone). */
export function runsAsFfmpeg(cmd: string): boolean {
  const r = spawnSync(cmd, ['-hide_banner', '-version'], { stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000, maxBuffer: 1024 * 1024 });
  return r.error === undefined && r.status === 0 && /^ffmpeg version /m.test(r.stdout.toString('utf8'));
}

/**
 * The binary @ffmpeg-installer/ffmpeg resolves for this platform, or undefined when the platform has none
 * (the package throws a string then) or the optional platform package was not installed.
 */
export function npmFfmpegBinary(): string | undefined {
  let p: string;
  try {
    const req = createRequire(import.meta.url);
    p = (req('@ffmpeg-installer/ffmpeg') as { path: string }).path;
  } catch {
    return undefined;
  }
  try {
    accessSync(p, constants.X_OK);
  } catch {
    // The platform package's only install script is `chmod u+x ffmpeg`, which npm 11 does not run;
    // its tarball already carries the exec bit, but a copy that lost it is repaired here.
    try {
      chmodSync(p, 0o755);
    } catch {
      return undefined;
    }
  }
  return p;
}

export interface ResolveDeps {
  probe?: (cmd: string) => boolean;
  npmBinary?: () => string | undefined;
}

/** Resolution in the documented order; throws FfmpegNotFoundError when none is usable. */
export function resolveFfmpeg(configured: string | undefined, deps: ResolveDeps = {}): FfmpegResolution {
  const probe = deps.probe ?? runsAsFfmpeg;
  // Probed like the others: a FFMPEG_PATH with a typo started the service without a relay that could
  // run (every ffmpeg start failed, at the first live show) instead of stopping the start naming it.
  if (configured !== undefined && configured !== '') {
    if (!probe(configured)) throw new FfmpegNotFoundError(configured);
    return { path: configured, source: 'config' };
  }
  if (probe('ffmpeg')) return { path: 'ffmpeg', source: 'path' };
  const fromNpm = (deps.npmBinary ?? npmFfmpegBinary)();
  if (fromNpm !== undefined && probe(fromNpm)) return { path: fromNpm, source: 'npm' };
  throw new FfmpegNotFoundError();
}

const cache = new Map<string, FfmpegResolution>();
/** resolveFfmpeg, probed once per configured value for the life of the process. */
export function ffmpegPath(configured?: string): string {
  const key = configured ?? '';
  let r = cache.get(key);
  if (!r) {
    r = resolveFfmpeg(configured);
    cache.set(key, r);
  }
  return r.path;
}

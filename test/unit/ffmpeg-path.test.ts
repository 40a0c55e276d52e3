/** ffmpeg resolution (issue 10 item 6): FFMPEG_PATH → `ffmpeg` on PATH → the binary shipped by @ffmpeg-installer. */
import { loadConfig, loadSimConfig } from '../../src/config/config.js';
import { FfmpegNotFoundError, npmFfmpegBinary, resolveFfmpeg, runsAsFfmpeg } from '../../src/lib/ffmpeg-path.js';

test('FFMPEG_PATH is read by src/config and wins over everything', () => {
  expect(loadConfig({ FFMPEG_PATH: '/opt/ff/ffmpeg' }, '/nonexistent').ffmpegPath).toBe('/opt/ff/ffmpeg');
  expect(loadConfig({}, '/nonexistent').ffmpegPath).toBeUndefined();
  const probed: string[] = [];
  const r = resolveFfmpeg('/opt/ff/ffmpeg', { probe: (c) => (probed.push(c), true), npmBinary: () => '/npm/ffmpeg' });
  expect(r).toEqual({ path: '/opt/ff/ffmpeg', source: 'config' });
  expect(probed).toEqual(['/opt/ff/ffmpeg']);
});

// Used as given, a FFMPEG_PATH with a typo started the service with a relay none of whose ffmpeg could start.
test('a FFMPEG_PATH that does not run as ffmpeg stops the start naming it, with no fallback', () => {
  expect(() => resolveFfmpeg('/nonexistent/ffmpeg', { npmBinary: () => '/npm/ffmpeg' })).toThrow('FFMPEG_PATH=/nonexistent/ffmpeg does not run as ffmpeg');
  expect(() => resolveFfmpeg('/bin/true', { npmBinary: () => '/npm/ffmpeg' })).toThrow(FfmpegNotFoundError);
  const npm = npmFfmpegBinary() as string;
  expect(resolveFfmpeg(npm)).toEqual({ path: npm, source: 'config' });
});

test('ffmpeg on PATH comes before the npm binary, which is the fallback', () => {
  expect(resolveFfmpeg(undefined, { probe: () => true, npmBinary: () => '/npm/ffmpeg' })).toEqual({ path: 'ffmpeg', source: 'path' });
  expect(resolveFfmpeg(undefined, { probe: (c) => c !== 'ffmpeg', npmBinary: () => '/npm/ffmpeg' })).toEqual({ path: '/npm/ffmpeg', source: 'npm' });
  expect(() => resolveFfmpeg(undefined, { probe: () => false, npmBinary: () => '/npm/ffmpeg' })).toThrow(FfmpegNotFoundError);
  expect(() => resolveFfmpeg(undefined, { probe: () => false, npmBinary: () => undefined })).toThrow(FfmpegNotFoundError);
});

test('the npm package ships a runnable linux-x64 ffmpeg without any install script', () => {
  const p = npmFfmpegBinary();
  expect(p).toMatch(/@ffmpeg-installer\/linux-x64\/ffmpeg$/);
  expect(runsAsFfmpeg(p as string)).toBe(true);
  expect(runsAsFfmpeg('/nonexistent/ffmpeg')).toBe(false);
});

test('SIM_RTMP_PORT defaults to 1936', () => {
  expect(loadSimConfig({}).rtmpPort).toBe(1936);
  expect(loadSimConfig({ SIM_RTMP_PORT: '0' }).rtmpPort).toBe(0);
  expect(() => loadSimConfig({ SIM_RTMP_PORT: 'x' })).toThrow(/SIM_RTMP_PORT/);
});

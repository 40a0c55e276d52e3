/**
 * The last lines an ffmpeg run wrote (src/relay/ffmpeg.process.ts startFfmpeg's `tail`, what goes into
 * a destination's `lastError` and the relay's log lines) are masked: every whole line, and also the
 * last one when the process ended in the middle of it (no newline: killed, or crashed mid-write). A
 * child that prints a stream key is a shell here, standing in for ffmpeg.
 */
import { startFfmpeg } from '../../src/relay/ffmpeg.process.js';

const KEY = 'sk_live_Q1w2E3r4T5y6';

test('every line of the tail is masked, the last one without its newline too', async () => {
  const script = `printf 'Opening output for key ${KEY}\\n' >&2; printf 'Broken pipe writing ${KEY}' >&2; exit 1`;
  const run = startFfmpeg('sh', ['-c', script], [KEY], () => undefined);
  const { code, tail } = await run.exited;
  expect(code).toBe(1);
  expect(tail).toMatch(/Opening output for key .* \| Broken pipe writing /);
  expect(tail).not.toContain(KEY);
});

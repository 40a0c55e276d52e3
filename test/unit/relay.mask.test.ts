/** Stream keys never reach a log: the masking applied to ffmpeg command lines and ffmpeg's own output. */
import { copyArgs } from '../../src/relay/ffmpeg.process.js';
import { maskEndpointUrl, maskSecrets, maskUrlSecrets } from '../../src/relay/mask.js';

const SHOW_KEY = 'sk_3q2-7wKf0eHcVbN1mPqRsTuVwXyZ0123456789abcde';
const YT_KEY = 'abcd-efgh-ijkl-mnop-qrst';

test('a copy relay command line shows neither stream key once masked', () => {
  const args = copyArgs(`rtmp://127.0.0.1:1935/live/${SHOW_KEY}`, `rtmp://10.1.2.3:1936/youtube/${YT_KEY}`);
  expect(args).toEqual(expect.arrayContaining(['-c', 'copy', '-f', 'flv', '-progress', 'pipe:1']));
  const line = maskSecrets(`ffmpeg ${args.join(' ')}`, [SHOW_KEY, YT_KEY]);
  expect(line).not.toContain(SHOW_KEY);
  expect(line).not.toContain(YT_KEY);
  expect(line).toContain('rtmp://127.0.0.1:1935/live/***');
  expect(line).toContain('rtmp://10.1.2.3:1936/youtube/***');
});

test.each([
  [`[rtmp @ 0x55] Server error: rtmp://a.rtmp.youtube.com/live2/${YT_KEY}: Broken pipe`, '[rtmp @ 0x55] Server error: rtmp://a.rtmp.youtube.com/live2/***: Broken pipe'],
  [`rtmps://live-api-s.facebook.com:443/rtmp/FB-123-0-AbC?s_bl=1&s_sw=0: I/O error`, 'rtmps://live-api-s.facebook.com:443/rtmp/***: I/O error'],
  [`srt://ingest.example.com:9000?streamid=${YT_KEY}&passphrase=x: Connection refused`, 'srt://ingest.example.com:9000?***: Connection refused'],
  // A key that appears without its URL (ffmpeg repeats the stream name) is masked by value.
  [`Input #0, flv, from '${SHOW_KEY}':`, "Input #0, flv, from '***':"],
  // A pull source's user:password (the show view masks them for viewers; lastError and logs must too).
  ['source refused: https://enc:PASS0123@cdn.example.com/hls/index.m3u8: 10.0.0.5 is private', 'source refused: https://***@cdn.example.com/hls/index.m3u8: 10.0.0.5 is private'],
  ['[rtmp @ 0x55] Cannot open connection rtmp://enc:p@ss:word@media.example.com:1935/live/k: refused', '[rtmp @ 0x55] Cannot open connection rtmp://***@media.example.com:1935/live/***: refused'],
])('ffmpeg output %#: keys masked', (raw, masked) => {
  expect(maskSecrets(raw, [SHOW_KEY, YT_KEY])).toBe(masked);
});

test('the edge input waits for the publish (no read timeout) only when asked to', () => {
  expect(copyArgs('rtmp://h/live/k', 'rtmp://d/app/k', { inputTimeout: false }).indexOf('-rw_timeout')).toBeGreaterThan(copyArgs('rtmp://h/live/k', 'rtmp://d/app/k', { inputTimeout: false }).indexOf('-i'));
  const withTimeout = copyArgs('rtmp://h/live/k', 'rtmp://d/app/k');
  expect(withTimeout.indexOf('-rw_timeout')).toBeLessThan(withTimeout.indexOf('-i'));
  expect(copyArgs('https://cdn.example.com/a.m3u8', 'rtmp://d/app/k', { realtime: true })).toContain('-re');
});

test('the output has its own write timeout (a slow destination is judged by the watchdog); the input keeps 5 s', () => {
  const args = copyArgs('rtmp://h/live/k', 'rtmp://d/app/k', { outputTimeoutUs: 24_000_000 });
  const timeouts = args.flatMap((a, i) => (a === '-rw_timeout' ? [{ before: i < args.indexOf('-i'), us: args[i + 1] }] : []));
  expect(timeouts).toEqual([
    { before: true, us: '5000000' },
    { before: false, us: '24000000' },
  ]);
});

test('an RTMP input is opened without frame-rate probing (a second of start-up); an HLS input keeps it', () => {
  const rtmp = copyArgs('rtmp://h/live/k', 'rtmp://d/app/k', { inputTimeout: false });
  expect(rtmp.indexOf('-fpsprobesize')).toBeGreaterThanOrEqual(0);
  expect(rtmp[rtmp.indexOf('-fpsprobesize') + 1]).toBe('0');
  expect(rtmp.indexOf('-fpsprobesize')).toBeLessThan(rtmp.indexOf('-i'));
  expect(copyArgs('http://127.0.0.1:9/p/a.m3u8', 'rtmp://d/app/k', { realtime: true })).not.toContain('-fpsprobesize');
});

/**
 * maskUrlSecrets (a show's sourceUrl, the base of an endpoint's url for a viewer key) parses the URL
 * first: a password the text mask's USERINFO stops at (a `'`, as in `p'w`) is masked only by the parse;
 * a sourceUrl keeps its path and fragment. maskEndpointUrl (an endpoint's url as a viewer reads it)
 * hides the path and the fragment too: Slack, Discord and Zapier put the receiver's token in the path.
 * Scheme, host and port are kept, a bare `/` path too.
 */
const MASKS = { maskUrlSecrets, maskEndpointUrl };
test.each<[keyof typeof MASKS, string, string]>([
  ['maskUrlSecrets', "https://u:p'w@host/x", 'https://***@host/x'],
  ['maskUrlSecrets', 'https://user:PASS0123@cdn.example.com/hls/index.m3u8?token=T', 'https://***@cdn.example.com/hls/index.m3u8?***'],
  ['maskUrlSecrets', 'rtmp://a.rtmp.youtube.com/live2/KEY0123', 'rtmp://a.rtmp.youtube.com/live2/***'],
  ['maskUrlSecrets', 'https://cdn.example.com/hls/index.m3u8#x', 'https://cdn.example.com/hls/index.m3u8#x'],
  ['maskEndpointUrl', 'https://hooks.slack.com/services/T0123/B0123/SLACKSECRET0123', 'https://hooks.slack.com/***'],
  ['maskEndpointUrl', 'https://discord.com/api/webhooks/123456/DISCORDTOKEN?wait=true', 'https://discord.com/***?***'],
  ['maskEndpointUrl', 'https://hooks.zapier.com/hooks/catch/123/abcZAP/', 'https://hooks.zapier.com/***'],
  ['maskEndpointUrl', "https://u:p'w@hooks.example.com:8443/in#FRAG", 'https://***@hooks.example.com:8443/***#***'],
  ['maskEndpointUrl', 'https://hooks.example.com/', 'https://hooks.example.com/'],
  ['maskEndpointUrl', 'https://hooks.example.com/#FRAG', 'https://hooks.example.com/#***'],
  ['maskEndpointUrl', 'https://hooks.example.com', 'https://hooks.example.com'],
  ['maskEndpointUrl', 'not a url /path/SECRET', '***'],
])('%s %s', (mask, url, masked) => {
  expect(MASKS[mask](url)).toBe(masked);
});

/** Stream keys never reach a log: the masking applied to ffmpeg command lines and ffmpeg's own output. */
import { copyArgs } from '../../src/relay/ffmpeg.process.js';
import { maskHostIn, maskSecrets, maskUrl } from '../../src/relay/mask.js';

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
 * maskUrl: the one mask of a URL a partner gave (a show's sourceUrl, a target's baseUrl; an endpoint's
 * url with `path: 'hidden'`, below) as viewer keys and logs read it. It parses the URL first: a password the text mask's USERINFO
 * stops at (a `'`, as in `p'w`) is masked only by the parse. Scheme, port, the host's registrable part
 * and the path's shape are kept; user:password, every query value, the fragment, the path from its first
 * token-like segment on and its last segment, and token-like host labels (Pipedream's receiver id) are
 * `***`. Each receiver shape below: its token is not in the masked URL.
 */
test.each<[string, string]>([
  ["https://u:p'w@host/x", 'https://***@host/***'],
  ['https://user:PASS0123@cdn.example.com/hls/index.m3u8?token=T', 'https://***@cdn.example.com/hls/***?token=***'],
  ['rtmp://a.rtmp.youtube.com/live2/KEY0123', 'rtmp://a.rtmp.youtube.com/live2/***'],
  ['https://cdn.example.com/live/0123456789abcdef0123/index.m3u8#x', 'https://cdn.example.com/live/***/***#***'],
  ['https://hooks.slack.com/services/T0123/B0123/SLACKSECRET0123', 'https://hooks.slack.com/services/T0123/B0123/***'],
  ['https://discord.com/api/webhooks/123456/DISCORDTOKEN?wait=true', 'https://discord.com/api/webhooks/***/***?wait=***'],
  ['https://hooks.zapier.com/hooks/catch/1234567/abcdefg/', 'https://hooks.zapier.com/hooks/catch/***/***/'],
  ['https://webhook.site/0f3c2b1a-1234-4abc-9def-0123456789ab', 'https://webhook.site/***'],
  ['https://eo3jwbzqd6ltmxx.m.pipedream.net/', 'https://***.m.pipedream.net/'],
  ['https://eoabcdefghijklm.m.pipedream.net', 'https://***.m.pipedream.net/'],
  ['https://hooks.example/in?token=SECRET1&key=SECRET2&sig=SECRET3&code=SECRET4', 'https://hooks.example/***?token=***&key=***&sig=***&code=***'],
  ['https://hooks.example.co.uk/?SECRETONLY&a0123456789abcdef0=x', 'https://hooks.example.co.uk/?***&***=***'],
  ["https://u:p'w@hooks.example.com:8443/in#FRAG", 'https://***@hooks.example.com:8443/***#***'],
  ['https://api.eu.example.com/', 'https://api.eu.example.com/'],
  ['https://203.0.113.7:8080/x', 'https://203.0.113.7:8080/***'],
  ['not a url /path/SECRET', '***'],
])('maskUrl %s', (url, masked) => {
  expect(maskUrl(url)).toBe(masked);
});

/**
 * maskUrl with `path: 'hidden'` (an outbound webhook endpoint's url: viewer keys, the ops console, the
 * delivery's logs and errors): the whole path is `***` (a bare `/` kept), not its shape: a short
 * all-letter token in a middle segment (`/abcdefgh/in`) looks like a word and the shape showed it.
 * Host, userinfo, query and fragment masked as without it.
 */
test.each<[string, string]>([
  ['https://hooks.example.com/abcdefgh/in', 'https://hooks.example.com/***'],
  ['https://hooks.slack.com/services/T0123/B0123/SLACKSECRET0123', 'https://hooks.slack.com/***'],
  ['https://eo3jwbzqd6ltmxx.m.pipedream.net/', 'https://***.m.pipedream.net/'],
  ['https://eoabcdefghijklm.m.pipedream.net', 'https://***.m.pipedream.net/'],
  ["https://u:p'w@hooks.example.com:8443/in?token=SECRET1&v=2#FRAG", 'https://***@hooks.example.com:8443/***?token=***&v=***#***'],
  ['https://hooks.example.co.uk/?SECRETONLY', 'https://hooks.example.co.uk/?***'],
  ['not a url /path/SECRET', '***'],
])("maskUrl path 'hidden' %s", (url, masked) => {
  expect(maskUrl(url, { path: 'hidden' })).toBe(masked);
});

test('maskHostIn: an error naming a token-like host names it masked', () => {
  expect(maskHostIn('getaddrinfo ENOTFOUND eo3jwbzqd6ltmxx.m.pipedream.net', 'https://eo3jwbzqd6ltmxx.m.pipedream.net/')).toBe('getaddrinfo ENOTFOUND ***.m.pipedream.net');
  expect(maskHostIn('getaddrinfo ENOTFOUND hooks.example.com', 'https://hooks.example.com/in')).toBe('getaddrinfo ENOTFOUND hooks.example.com');
  expect(maskHostIn('x', 'not a url')).toBe('x');
});

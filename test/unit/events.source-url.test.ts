/**
 * A show's `sourceUrl` is passed as it is to ffmpeg in pull mode: the schema refuses what a process
 * argument cannot carry (a NUL byte) and what no encoder's URL contains (whitespace, control characters).
 */
import { PartnerEventSchema } from '../../src/domain/events.js';

const showWith = (sourceUrl: string) =>
  PartnerEventSchema.safeParse({
    type: 'show.updated',
    occurredAt: '2026-11-24T18:00:00Z',
    data: { show: { id: 's', title: 'T', scheduledAt: '2026-11-24T18:00:00Z', state: 'live', products: [], pinnedProductIds: [], sourceUrl } },
  });

test.each(['rtmp://origin.example/live/key', 'https://cdn.example/hls/show.m3u8?token=abc', 'srt://origin.example:9000?streamid=x'])('accepts %s', (url) => {
  expect(showWith(url).success).toBe(true);
});

test.each(['rtmp://origin.example/live/k\u0000ey', 'https://cdn.example/hls/sh\u0001ow.m3u8', 'rtmp://origin.example/live/a b', 'rtmp://origin.example/live/k\u007fey'])(
  'refuses %j',
  (url) => {
    const r = showWith(url);
    expect(r.success).toBe(false);
    expect(JSON.stringify(r.error?.issues)).toMatch(/sourceUrl/);
  },
);

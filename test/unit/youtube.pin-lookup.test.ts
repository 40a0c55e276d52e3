/**
 * The YouTube pin lookup after a crash (findPinMessage, historyMayNotReach in
 * src/targets/youtube/youtube.adapter.ts) reads a chat message's `publishedAt` strictly: an RFC 3339
 * date-time with an offset, as YouTube writes it. Date.parse read "1.5" as 2001-01-05 and local-time
 * text as a time.
 */
import { findPinMessage, historyMayNotReach } from '../../src/targets/youtube/youtube.adapter.js';
import type { LiveChatMessage } from '../../src/targets/youtube/youtube.schemas.js';

const LINK = 'https://go.syndicast.test/l/abc';
const TAG = '1a2b3c4d';
const TEXT = `🛍 Linen shirt — €49.00 ${LINK} · ${TAG}`;
const SINCE = Date.parse('2026-12-04T21:00:00Z');
const msg = (id: string, publishedAt: string | undefined, text = TEXT): LiveChatMessage => ({
  id,
  snippet: { ...(publishedAt !== undefined ? { publishedAt } : {}), displayMessage: text, textMessageDetails: { messageText: text } },
});

test('a message with the link and tag published since the attempt is the pin; one from before it is not', () => {
  expect(findPinMessage([msg('a', '2026-12-04T21:00:05Z')], LINK, TAG, SINCE)?.id).toBe('a');
  expect(findPinMessage([msg('a', '2026-12-04T21:00:05.123456+01:00')], LINK, TAG, SINCE - 3600_000)?.id).toBe('a');
  expect(findPinMessage([msg('a', '2026-12-04T20:59:59Z')], LINK, TAG, SINCE)).toBeUndefined();
  expect(findPinMessage([msg('a', '2026-12-04T21:00:05Z', `${LINK} · ffffffff`)], LINK, TAG, SINCE)).toBeUndefined();
});

test('a message whose publishedAt is not RFC 3339 is ignored, not read as some time (Date.parse took these as times since the attempt)', () => {
  for (const odd of [undefined, '', 'soon', '2026-12-04 22:00', 'Dec 4 2026 22:00', '2026-12-04T22:00:00', '2026-12-04T22:00:00+01']) {
    expect(findPinMessage([msg('odd', odd)], LINK, TAG, SINCE)).toBeUndefined();
  }
  // the readable one after it is still found
  expect(findPinMessage([msg('odd', '2026-12-04 22:00'), msg('ok', '2026-12-04T21:30:00Z')], LINK, TAG, SINCE)?.id).toBe('ok');
});

test('a full first page whose first time cannot be read may not reach back to the attempt ("1.5" was 2001: it did)', () => {
  const full = (first: string): LiveChatMessage[] => [msg('0', first), msg('1', '2026-12-04T21:30:00Z')];
  expect(historyMayNotReach(full('1.5'), 2, SINCE)).toBe(true);
  expect(historyMayNotReach(full('-3'), 2, SINCE)).toBe(true);
  expect(historyMayNotReach(full('2026-12-04T20:00:00Z'), 2, SINCE)).toBe(false);
  expect(historyMayNotReach(full('2026-12-04T21:10:00Z'), 2, SINCE)).toBe(true);
  expect(historyMayNotReach(full('1.5'), 3, SINCE)).toBe(false); // not a full page: the whole history came
});

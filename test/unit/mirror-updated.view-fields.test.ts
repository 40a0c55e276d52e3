/**
 * `mirror.updated` carries the mirror as the show view shows it (src/mirror/show.view.ts): the target's
 * `enabled`, a disabled target's note as `lastError`, and each waiting pin's `reason`. Its idempotency
 * key stays what it was before those fields were added (a message claimed before an upgrade is not sent again).
 */
import { createHash } from 'node:crypto';
import { newMirror, type MirrorDoc } from '../../src/domain/mirror.js';
import type { Product } from '../../src/domain/events.js';
import { keyPart } from '../../src/lib/ids.js';
import { mirrorUpdatedData, mirrorUpdatedKey } from '../../src/outbound/mirror-updated.js';
import { disabledTargetNote, pinReason } from '../../src/mirror/show.view.js';

function liveMirror(): MirrorDoc {
  const m = newMirror('yt1', 'youtube');
  m.state = 'live';
  m.remote = { externalId: 'b1', url: 'https://youtube.example/b1' } as MirrorDoc['remote'];
  m.pins['p1'] = { state: 'pinned', episode: 1, linkUrl: 'http://127.0.0.1/l/a', ref: 'r', at: undefined };
  // pinned by the partner before it sent the product: the sync lists it, pending
  m.pins['p9'] = { state: 'pending', episode: 1, linkUrl: undefined, ref: undefined, at: undefined };
  m.lastError = 'youtube: 503 retrying in 3 s';
  return m;
}

const desired = { state: 'live' as const, pinned: new Set(['p1', 'p9']), products: new Map<string, Product>([['p1', {} as Product]]) };

test("a pending pin of a product the show's snapshot lacks carries the view's reason; the target's enabled is there", () => {
  const data = mirrorUpdatedData('s1', liveMirror(), { enabled: true, desired });
  expect(data.enabled).toBe(true);
  expect(data.pins).toEqual([
    { productId: 'p1', state: 'pinned', linkUrl: 'http://127.0.0.1/l/a' },
    { productId: 'p9', state: 'pending', linkUrl: null, reason: pinReason('p9') },
  ]);
  expect(data.lastError).toBe('youtube: 503 retrying in 3 s');
});

test("a disabled target's unfinished mirror says so, as on the show view; an ended one keeps its error", () => {
  const data = mirrorUpdatedData('s1', liveMirror(), { enabled: false, desired });
  expect({ enabled: data.enabled, lastError: data.lastError }).toEqual({ enabled: false, lastError: disabledTargetNote('yt1') });
  const ended = liveMirror();
  ended.state = 'ended';
  expect(mirrorUpdatedData('s1', ended, { enabled: false }).lastError).toBe('youtube: 503 retrying in 3 s');
});

test('the idempotency key covers what the payload had before enabled and reason were added', () => {
  const m = liveMirror();
  m.syncedVersion = 3;
  const before = {
    showId: 's1',
    targetId: 'yt1',
    platform: 'youtube',
    state: 'live',
    externalId: 'b1',
    url: 'https://youtube.example/b1',
    pins: [
      { productId: 'p1', state: 'pinned', linkUrl: 'http://127.0.0.1/l/a' },
      { productId: 'p9', state: 'pending', linkUrl: null },
    ],
    lastError: 'youtube: 503 retrying in 3 s',
  };
  const hash = createHash('sha256')
    .update(JSON.stringify({ data: before, v: 3, g: 0, e: [['p1', 1], ['p9', 1]] }))
    .digest('base64url')
    .slice(0, 22);
  const expected = `mirror:${keyPart('p')}:${keyPart('s1')}:${keyPart('yt1')}:${hash}`;
  expect(mirrorUpdatedKey('p', 's1', m, mirrorUpdatedData('s1', m, { enabled: true, desired }))).toBe(expected);
  expect(mirrorUpdatedKey('p', 's1', m)).toBe(expected);
});

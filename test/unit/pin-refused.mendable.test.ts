/**
 * Which pin refusals the seller can mend on the platform (PinRefusedError.mendable: asked again while the
 * show is live), and the wait between those attempts (pure). A refusal of what we sent (a malformed id)
 * is not asked again until the product changes: a permanently bad pin does not call the platform every
 * few seconds; one the seller can mend is asked again, at most 5 min apart.
 */
import { PinRefusedError } from '../../src/targets/target.errors.js';
import { mapFailure, type WhatnotFailure } from '../../src/targets/whatnot/whatnot.errors.js';
import { mapApiFailure, type TiktokFailure } from '../../src/targets/tiktok/tiktok.errors.js';
import { REFUSED_RETRY_CAP_MS, newMirror, refusedPinReason, refusedRetryDue, refusedRetryMs, reportedPins, type MirrorDoc } from '../../src/domain/mirror.js';
import type { DesiredShow } from '../../src/domain/desired-state.js';
import type { Product } from '../../src/domain/events.js';
import { mirrorUpdatedData, mirrorUpdatedKey } from '../../src/outbound/mirror-updated.js';
import { showView, type RelayViewInput } from '../../src/mirror/show.view.js';
import type { TargetRecord } from '../../src/store/partner.repository.js';
import { refusedPinDue } from '../../src/mirror/sweep.service.js';

const NOW = Date.parse('2026-11-24T18:00:00Z');

describe('mendable pin refusals', () => {
  it("Whatnot: a 404 naming product_id (no such listing yet) is mendable; a 422 on its form is not", () => {
    const ctx = { what: 'add product P to show S', target: { id: 'tgt_wn', partnerId: 'ptn_1' }, item: 'product_id' };
    const http = (status: number, body: unknown): WhatnotFailure => ({ kind: 'http', status, body, retryAfter: undefined });
    const missing = mapFailure(http(404, { type: 'not-found', param: 'product_id', detail: 'Product P not found' }), NOW, ctx).error;
    expect(missing).toBeInstanceOf(PinRefusedError);
    expect((missing as PinRefusedError).mendable).toBe(true);
    const malformed = mapFailure(http(422, { type: 'validation-error', param: 'product_id', detail: 'bad id' }), NOW, ctx).error;
    expect(malformed).toBeInstanceOf(PinRefusedError);
    expect((malformed as PinRefusedError).mendable).toBe(false);
  });

  it('TikTok: 36009004 naming product_id (the shop has no such product for affiliates) is mendable; 36009001 Invalid product_id is not', () => {
    const ctx = { scope: 'seller.affiliate_collaboration.write', what: 'generate a promotion link', target: { id: 'tgt_tt', partnerId: 'ptn_1' }, item: 'product_id' };
    const api = (code: number, message: string): TiktokFailure => ({ kind: 'api', status: 200, code, message, retryAfter: undefined });
    const missing = mapApiFailure(api(36009004, 'The product_id does not exist in this shop'), NOW, ctx).error;
    expect(missing).toBeInstanceOf(PinRefusedError);
    expect((missing as PinRefusedError).mendable).toBe(true);
    const malformed = mapApiFailure(api(36009001, 'Invalid product_id'), NOW, ctx).error;
    expect(malformed).toBeInstanceOf(PinRefusedError);
    expect((malformed as PinRefusedError).mendable).toBe(false);
  });

  it('waits the base, then twice as long at each refusal, at most 5 min', () => {
    expect([1, 2, 3, 4, 5, 6, 40].map((n) => refusedRetryMs(n, 30_000))).toEqual([30_000, 60_000, 120_000, 240_000, 300_000, 300_000, 300_000]);
    expect(refusedRetryMs(1, 400)).toBe(400);
    expect(REFUSED_RETRY_CAP_MS).toBe(300_000);
  });

  it('due once its wait is over, only for a mendable refusal; the sweep asks only for a live show whose pin is still wanted', () => {
    const retry = { tries: 1, at: NOW };
    expect(refusedRetryDue({ as: 'a', error: 'e', retry }, NOW - 1)).toBe(false);
    expect(refusedRetryDue({ as: 'a', error: 'e', retry }, NOW)).toBe(true);
    expect(refusedRetryDue({ as: 'a', error: 'e' }, NOW + 3_600_000)).toBe(false);
    expect(refusedRetryDue(undefined, NOW)).toBe(false);
    const pins = { p1: { state: 'failed' as const, episode: 1, linkUrl: undefined, ref: undefined, at: undefined, refused: { as: 'a', error: 'e', retry } } };
    expect(refusedPinDue({ pins }, { state: 'live', pinned: new Set(['p1']) }, NOW)).toBe(true);
    expect(refusedPinDue({ pins }, { state: 'live', pinned: new Set(['p1']) }, NOW - 1)).toBe(false);
    expect(refusedPinDue({ pins }, { state: 'live', pinned: new Set() }, NOW)).toBe(false);
    expect(refusedPinDue({ pins }, { state: 'ended', pinned: new Set(['p1']) }, NOW)).toBe(false);
  });

  it("the view's reason says it is asked again, the same from one attempt to the next (no mirror.updated per attempt)", () => {
    const a = refusedPinReason({ error: 'whatnot: no such listing', retry: { tries: 1, at: NOW } });
    expect(a).toMatch(/^whatnot: no such listing; while the show is live the pin is tried again/);
    expect(a).toContain(`at most ${REFUSED_RETRY_CAP_MS / 60_000} min apart`); // the cap it names is refusedRetryMs's
    expect(refusedPinReason({ error: 'whatnot: no such listing', retry: { tries: 4, at: NOW + 240_000 } })).toBe(a);
    expect(refusedPinReason({ error: 'whatnot: bad id' })).not.toMatch(/while the show is live/);
  });
});

describe('what the partner is told of a refused pin asked again', () => {
  // Refused (mendable) at episode 2; its product as sent digests to 'a'.
  const refusedAt2 = (): MirrorDoc => {
    const m = newMirror('wn', 'whatnot');
    m.state = 'live';
    m.remote = { externalId: 'w1', url: 'https://whatnot.example/w1' } as MirrorDoc['remote'];
    m.syncedVersion = 4;
    m.pins['p1'] = { state: 'failed', episode: 2, linkUrl: 'http://127.0.0.1/l/a', ref: undefined, at: '2026-11-24T18:00:00.000Z', refused: { as: 'a', error: 'whatnot: no such listing', retry: { tries: 1, at: NOW + 30_000 }, episode: 2 } };
    m.pins['p2'] = { state: 'pinned', episode: 1, linkUrl: 'http://127.0.0.1/l/b', ref: 'r', at: undefined };
    return m;
  };
  const desired = { state: 'live' as const, pinned: new Set(['p1', 'p2']), products: new Map<string, Product>([['p1', {} as Product], ['p2', {} as Product]]) };

  it('an attempt (pending, its last refusal kept) is still failed with the reason, on the view and in mirror.updated', () => {
    const m = refusedAt2();
    m.pins['p1'] = { ...m.pins['p1']!, state: 'pending', episode: 3, tried: true, triedAt: NOW + 30_000 };
    const told = mirrorUpdatedData('s1', m, { enabled: true, desired }).pins[0]!;
    expect(told).toEqual({ productId: 'p1', state: 'failed', linkUrl: 'http://127.0.0.1/l/a', reason: refusedPinReason(m.pins['p1']!.refused!) });
    const target = { id: 'wn', platform: 'whatnot', enabled: true } as TargetRecord;
    const viewed = showView({ ...desired, showId: 's1', pinUniverse: desired.pinned, version: 4 } as unknown as DesiredShow, [target], [m], { ingest: { url: 'rtmp://x' }, mirrorIngest: [], relay: [], revealMirrorKeys: false } satisfies RelayViewInput).mirrors[0]!.pins[0]!;
    expect(viewed).toEqual(told);
  });

  it('refused again for the same reason: the same fingerprint and the same mirror.updated key; another reason or a landed pin changes both', () => {
    const before = refusedAt2();
    const again = refusedAt2();
    // Asked again as episode 3 (a new intent), refused again: new count, wait and time.
    again.pins['p1'] = { ...again.pins['p1']!, episode: 3, at: '2026-11-24T18:00:31.000Z', dueAt: NOW + 30_000, refused: { as: 'a', error: 'whatnot: no such listing', retry: { tries: 2, at: NOW + 90_000 }, episode: 2 } };
    expect(JSON.stringify(reportedPins(again.pins))).toBe(JSON.stringify(reportedPins(before.pins)));
    expect(mirrorUpdatedKey('ptn', 's1', again)).toBe(mirrorUpdatedKey('ptn', 's1', before));
    const other = refusedAt2();
    other.pins['p1'] = { ...other.pins['p1']!, episode: 3, refused: { as: 'a', error: 'whatnot: something else', retry: { tries: 2, at: NOW + 90_000 }, episode: 3 } };
    expect(JSON.stringify(reportedPins(other.pins))).not.toBe(JSON.stringify(reportedPins(before.pins)));
    expect(mirrorUpdatedKey('ptn', 's1', other)).not.toBe(mirrorUpdatedKey('ptn', 's1', before));
    // Every other pin counts as stored (a mirror's last fingerprint stays the same across the upgrade).
    expect(reportedPins(before.pins)['p2']).toBe(before.pins['p2']);
  });
});

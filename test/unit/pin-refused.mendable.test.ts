/**
 * Which pin refusals the seller can mend on the platform (PinRefusedError.mendable: asked again while the
 * show is live), and the wait between those attempts (pure). A refusal of what we sent (a malformed id)
 * is not asked again until the product changes: a permanently bad pin does not call the platform every
 * few seconds; one the seller can mend is asked again, at most 5 min apart.
 */
import { PinRefusedError } from '../../src/targets/target.errors.js';
import { mapFailure, type WhatnotFailure } from '../../src/targets/whatnot/whatnot.errors.js';
import { mapApiFailure, type TiktokFailure } from '../../src/targets/tiktok/tiktok.errors.js';
import { REFUSED_RETRY_CAP_MS, refusedPinReason, refusedRetryDue, refusedRetryMs } from '../../src/domain/mirror.js';
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
    expect(refusedPinReason({ error: 'whatnot: no such listing', retry: { tries: 4, at: NOW + 240_000 } })).toBe(a);
    expect(refusedPinReason({ error: 'whatnot: bad id' })).not.toMatch(/while the show is live/);
  });
});

/**
 * sameSpec decides whether a sync run calls the platform's updateShow. Start times are instants: a
 * mirror applied before snapshots were normalised to UTC holds the offset form, and the same moment
 * written in Z (or another offset) is no change (review of 4a0ba1e: every such show's next snapshot
 * updated all of its platform shows).
 */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { sameSpec } from '../../src/mirror/sync.service.js';

const base = { title: 'Spring drop', description: 'live' };

describe('sameSpec', () => {
  it('the same instant with another offset is the same spec', () => {
    expect(sameSpec({ ...base, scheduledAt: '2026-12-02T20:00:00+02:00' }, { ...base, scheduledAt: '2026-12-02T18:00:00Z' })).toBe(true);
    expect(sameSpec({ ...base, scheduledAt: '2026-12-02T18:00:00.000Z' }, { ...base, scheduledAt: '2026-12-02T18:00:00Z' })).toBe(true);
    expect(sameSpec({ ...base, scheduledAt: '2026-12-02T18:00:00-05:30' }, { ...base, scheduledAt: '2026-12-02T23:30:00Z' })).toBe(true);
  });

  it('another instant, title or description is a change; nothing applied is a change', () => {
    expect(sameSpec({ ...base, scheduledAt: '2026-12-02T20:00:00+02:00' }, { ...base, scheduledAt: '2026-12-02T20:00:00Z' })).toBe(false);
    expect(sameSpec({ ...base, scheduledAt: '2026-12-02T18:00:00Z' }, { ...base, title: 'Other', scheduledAt: '2026-12-02T18:00:00Z' })).toBe(false);
    expect(sameSpec({ ...base, scheduledAt: '2026-12-02T18:00:00Z' }, { ...base, description: undefined, scheduledAt: '2026-12-02T18:00:00Z' })).toBe(false);
    expect(sameSpec(undefined, { ...base, scheduledAt: '2026-12-02T18:00:00Z' })).toBe(false);
    expect(sameSpec({ ...base, scheduledAt: 'not a time' }, { ...base, scheduledAt: 'also not' })).toBe(false);
  });

  it('equal exactly when the two times are the same millisecond, whatever the offsets', () => {
    const offsets = fc.integer({ min: -14 * 60, max: 14 * 60 });
    const instant = fc.integer({ min: Date.UTC(2020, 0, 1), max: Date.UTC(2035, 0, 1) }).map((ms) => ms - (ms % 1000));
    const write = (ms: number, offMin: number): string => {
      const local = new Date(ms + offMin * 60_000).toISOString().slice(0, 19);
      if (offMin === 0) return `${local}Z`;
      const sign = offMin < 0 ? '-' : '+';
      const abs = Math.abs(offMin);
      return `${local}${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
    };
    fc.assert(
      fc.property(instant, offsets, instant, offsets, (a, oa, b, ob) => {
        expect(sameSpec({ ...base, scheduledAt: write(a, oa) }, { ...base, scheduledAt: write(b, ob) })).toBe(a === b);
        expect(sameSpec({ ...base, scheduledAt: write(a, oa) }, { ...base, scheduledAt: write(a, ob) })).toBe(true);
      }),
    );
  });
});

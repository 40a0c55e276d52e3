import fc from 'fast-check';
import { nextMidnightPacific } from '../../src/targets/quota-reset.js';

const at = (iso: string): number => Date.parse(iso);
const iso = (ms: number): string => new Date(ms).toISOString();

/** Independent reading of the Los Angeles wall clock, for the property checks. */
const la = new Intl.DateTimeFormat('en-CA', {
  timeZone: 'America/Los_Angeles',
  hourCycle: 'h23',
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
});
const laDate = (ms: number): string => la.format(new Date(ms)).slice(0, 10);
const laTime = (ms: number): string => la.format(new Date(ms)).slice(-8);

describe('nextMidnightPacific', () => {
  it.each([
    ['winter (PST, UTC−8)', '2026-11-24T18:00:00.000Z', '2026-11-25T08:00:00.000Z'],
    ['summer (PDT, UTC−7)', '2026-07-01T12:00:00.000Z', '2026-07-02T07:00:00.000Z'],
    ['UTC already on the next day, Los Angeles not', '2026-07-02T03:00:00.000Z', '2026-07-02T07:00:00.000Z'],
    ['the day before spring-forward', '2026-03-07T20:00:00.000Z', '2026-03-08T08:00:00.000Z'],
    ['spring-forward day, before 02:00 (a 23-hour day)', '2026-03-08T09:00:00.000Z', '2026-03-09T07:00:00.000Z'],
    ['spring-forward day, after the change', '2026-03-08T12:00:00.000Z', '2026-03-09T07:00:00.000Z'],
    ['the day before fall-back', '2026-10-31T12:00:00.000Z', '2026-11-01T07:00:00.000Z'],
    ['fall-back day, 00:30 PDT (a 25-hour day)', '2026-11-01T07:30:00.000Z', '2026-11-02T08:00:00.000Z'],
    ['fall-back day, the repeated 01:30 (PST)', '2026-11-01T09:30:00.000Z', '2026-11-02T08:00:00.000Z'],
    ['exactly midnight: the next one, not this one', '2026-11-25T08:00:00.000Z', '2026-11-26T08:00:00.000Z'],
    ['one ms before midnight', '2026-11-25T07:59:59.999Z', '2026-11-25T08:00:00.000Z'],
    ['new year', '2026-12-31T20:00:00.000Z', '2027-01-01T08:00:00.000Z'],
    ['leap day', '2028-02-28T20:00:00.000Z', '2028-02-29T08:00:00.000Z'],
  ])('%s', (_name, now, expected) => {
    expect(iso(nextMidnightPacific(at(now)))).toBe(expected);
  });

  it('is always the first Los Angeles midnight after now (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: at('2000-01-01T00:00:00Z'), max: at('2100-01-01T00:00:00Z') }), (now) => {
        const next = nextMidnightPacific(now);
        expect(next).toBeGreaterThan(now);
        expect(next - now).toBeLessThanOrEqual(25 * 3600_000);
        expect(laTime(next)).toBe('00:00:00');
        // No other midnight in between: the instant before `next` is still on now's calendar day.
        expect(laDate(next - 1)).toBe(laDate(now));
      }),
      { numRuns: 2000 },
    );
  });
});

/** utcTimestamp (src/domain/events.ts): a contract timestamp with an offset as the same instant in Z. */
import { utcTimestamp } from '../../src/domain/events.js';

test.each([
  ['2026-11-24T20:00:00+02:00', '2026-11-24T18:00:00Z'],
  ['2026-11-24T20:00:00.123456+02:00', '2026-11-24T18:00:00.123456Z'],
  ['2026-01-01T00:30:00+01:00', '2025-12-31T23:30:00Z'],
  ['2026-11-24T18:00:00-00:00', '2026-11-24T18:00:00Z'],
  ['2026-11-24T18:00:00Z', '2026-11-24T18:00:00Z'],
  ['2026-11-24T18:00:00.5Z', '2026-11-24T18:00:00.5Z'],
  // no four-digit UTC year: kept as given
  ['9999-12-31T23:00:00-02:00', '9999-12-31T23:00:00-02:00'],
  ['0000-01-01T01:00:00+02:00', '0000-01-01T01:00:00+02:00'],
])('%s → %s', (given, utc) => {
  expect(utcTimestamp(given)).toBe(utc);
});

/**
 * latestHighlight (src/targets/bambuser/bambuser.adapter.ts): after a crash, a pin is in effect when the
 * show's latest highlight features the product. The latest is read from `startAt` strictly; one that
 * cannot be read is ignored (Date.parse read local-time text as a time, and NaN made the sort's order
 * arbitrary).
 */
import { latestHighlight } from '../../src/targets/bambuser/bambuser.adapter.js';

const h = (id: string, startAt: string) => ({ id, startAt, products: [`p-${id}`] });

test('the latest startAt wins, in any list order; the first of equals is kept', () => {
  expect(latestHighlight([h('a', '2026-12-04T21:00:00Z'), h('b', '2026-12-04T21:05:00.000Z'), h('c', '2026-12-04T21:01:00+00:00')])?.id).toBe('b');
  expect(latestHighlight([h('a', '2026-12-04T22:00:00+01:00'), h('b', '2026-12-04T21:00:00Z')])?.id).toBe('a');
  expect(latestHighlight([])).toBeUndefined();
});

test('a startAt that is not RFC 3339 is ignored, never taken for the latest', () => {
  // Date.parse read these as times (the simulator's local time, 2001-01-05, 2027-01-01)
  for (const odd of ['2026-12-04 23:00:00', '1.5', 'Jan 1 2027']) {
    expect(latestHighlight([h('odd', odd), h('ok', '2026-12-04T21:00:00Z')])?.id).toBe('ok');
    expect(latestHighlight([h('ok', '2026-12-04T21:00:00Z'), h('odd', odd)])?.id).toBe('ok');
  }
  // NaN in the comparator: the sort kept whichever came first
  expect(latestHighlight([h('odd', 'soon'), h('ok', '2026-12-04T21:00:00Z')])?.id).toBe('ok');
  expect(latestHighlight([h('odd', 'soon')])).toBeUndefined();
});

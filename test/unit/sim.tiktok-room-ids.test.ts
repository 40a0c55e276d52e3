/**
 * The TikTok simulator's LIVE room ids (made by hand, `POST /_sim/tiktok/shows`) are unique: they
 * were 73, the millisecond and 4 random digits, so two rooms made in one millisecond shared an id
 * about once in 3,000 — and a test linking 50 shows at once to rooms made by hand was refused, one
 * room being "already the mirror" of another show.
 */
import { createTiktokSimulator } from '../../src/simulators/tiktok.sim.js';
import { externalIdProblem } from '../../src/targets/external-id.js';

test('20,000 rooms made by hand at once have 20,000 ids, each a 19-digit room id TikTok could give', () => {
  const tiktok = createTiktokSimulator();
  const ids = Array.from({ length: 20_000 }, (_, i) => tiktok.createShowByHand!(`room ${i}`));
  expect(new Set(ids).size).toBe(ids.length);
  const bad = ids.filter((id) => !/^73\d{17}$/.test(id) || externalIdProblem('tiktok', id) !== undefined);
  expect(bad).toEqual([]);
});

/**
 * The Facebook simulator's new Pages (a token never seen, or `POST /_sim/facebook/accounts`) get ids
 * no Page has. They were 1048576 and 8 random digits with no look at the Pages there: two of 50 Pages
 * shared an id about once in 80,000, and the second token then acted on the first one's Page. Math.random
 * returning one value throughout makes every draw collide, so the old code failed this every time.
 */
import { jest } from '@jest/globals';
import { buildSimulatorApp } from '../../src/simulators/sim.server.js';

afterEach(() => jest.restoreAllMocks());

test('Pages made while the random digits repeat still get ids of their own, each a Page id Facebook could give', async () => {
  const app = buildSimulatorApp();
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  try {
    jest.spyOn(Math, 'random').mockReturnValue(0.123456789);
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await fetch(`${url}/_sim/facebook/accounts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      expect(r.status).toBe(201);
      ids.push(((await r.json()) as { pageId: string }).pageId);
    }
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.filter((id) => !/^1048576\d{8}$/.test(id))).toEqual([]);
  } finally {
    await app.close();
  }
});

/**
 * A lone UTF-16 surrogate in text a PLATFORM answers (show id, url, data, an error message that ends
 * up in lastError) must not break the mirror record: Redis Lua's cjson refuses to decode it ("invalid
 * unicode escape code"), and every later save of the mirror (the compare-and-set reads the stored
 * record in Lua) failed, so the show's sync failed for good. Partner input with one is refused at the
 * edge (events.input.test.ts); a platform's answer is stored well-formed (U+FFFD). Real redis-server.
 */
import { newMirror } from '../../src/domain/mirror.js';
import { loneSurrogateAt } from '../../src/lib/well-formed.js';
import { serviceForFile, type TestService } from '../helpers/service.js';

let svc: TestService;
serviceForFile((started) => (svc = started));

test('a mirror holding platform text with lone surrogates saves again and again, and reads back well-formed', async () => {
  const shows = svc.rt.shows;
  const m = newMirror('t1', 'bambuser');
  await shows.saveMirror('p', 'ws1', m);
  m.state = 'ready';
  m.remote = { externalId: 'show-\ud800', url: 'https://platform.example/\udc00x', ingest: undefined, data: { title: 'Live \ud83d', ['k\udfff']: 'v' } };
  m.lastError = 'retrying in 2 s: bambuser: 400 bad title \ud800';
  await shows.saveMirror('p', 'ws1', m);
  // The next save reads the stored record in Lua: it used to throw "invalid unicode escape code".
  m.state = 'live';
  await shows.saveMirror('p', 'ws1', m);
  await shows.updateMirror('p', 'ws1', 't1', () => newMirror('t1', 'bambuser'), (x) => {
    x.generation += 1;
    return true;
  });
  const got = (await shows.getMirror('p', 'ws1', 't1'))!;
  expect(got).toMatchObject({ state: 'live', generation: 1, lastError: 'retrying in 2 s: bambuser: 400 bad title \ufffd' });
  expect(got.remote).toMatchObject({ externalId: 'show-\ufffd', url: 'https://platform.example/\ufffdx', data: { title: 'Live \ufffd', ['k\ufffd']: 'v' } });
  const raw = (await svc.rt.redis.get(svc.rt.keys.mirror('p', 'ws1', 't1')))!;
  expect(loneSurrogateAt(JSON.parse(raw))).toBeUndefined();
  expect(raw).not.toMatch(/\\ud[89a-f]/i);
});

test('a record stored with one before this fix is replaced by the next save instead of failing it for good', async () => {
  const shows = svc.rt.shows;
  await shows.saveMirror('p', 'ws2', newMirror('t1', 'youtube'));
  const read = (await shows.getMirror('p', 'ws2', 't1'))!;
  // What an earlier version wrote: JSON.stringify keeps a lone surrogate as its escape.
  const broken = JSON.stringify({ ...read, remote: { externalId: 'x\ud800', url: undefined, ingest: undefined, data: {} } });
  expect(broken).toMatch(/\\ud800/);
  await svc.rt.redis.set(svc.rt.keys.mirror('p', 'ws2', 't1'), broken);
  const stuck = (await shows.getMirror('p', 'ws2', 't1'))!;
  stuck.state = 'ready';
  await shows.saveMirror('p', 'ws2', stuck);
  expect((await shows.getMirror('p', 'ws2', 't1'))!).toMatchObject({ state: 'ready', remote: { externalId: 'x\ufffd' } });
  // The revision check still holds for such a record: a save from an older read is refused.
  await svc.rt.redis.set(svc.rt.keys.mirror('p', 'ws2', 't1'), JSON.stringify({ ...stuck, rev: 7, remote: { externalId: 'y\ud800', url: undefined, ingest: undefined, data: {} } }));
  await expect(shows.saveMirror('p', 'ws2', { ...stuck, rev: 3 })).rejects.toThrow(/changed since it was read/);
});

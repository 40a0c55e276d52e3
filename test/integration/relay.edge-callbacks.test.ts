/**
 * The external (nginx-rtmp) edge's callbacks, `POST /v1/relay/edge/on-publish` and `…/on-publish-done`
 * (src/api/routes/relay-edge.routes.ts): the stream key is the credential; an accepted publish makes the
 * edge the show's source, its end clears it.
 *
 * Relay review: a key rotated while its encoder published on the nginx edge left that publish the
 * show's source for good. nginx cannot be told to cut the publish off, and its on_publish_done names the
 * old key, which is no show's any more: refused (403), the source stayed (it has no TTL), and the
 * relay's readers took the show for publishing (`connecting`, then restarted as failing destinations
 * every start-up allowance) until a publish with the new key came. The rotation now drops the source.
 */
import { sampleShow, sendEvent, servicePerFile, showEvent, type TestService } from '../helpers/service.js';

const P = 'edgecb-p';
const EDGE = 'rtmp://127.0.0.1:19350/live';
let svc: TestService;
let secret: string;

servicePerFile(P, (started) => ({ svc, secret } = started), { env: { RELAY_EDGE: 'none', RELAY_EDGE_INTERNAL_URL: EDGE } });

const form = (fields: Record<string, string>): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams(fields).toString(),
});
const callback = (what: 'on-publish' | 'on-publish-done', name: string, clientid: string): Promise<Response> =>
  svc.api(`/v1/relay/edge/${what}`, { key: null, ...form({ app: 'live', name, clientid, call: what === 'on-publish' ? 'publish' : 'publish_done' }) });

async function liveShow(showId: string): Promise<string> {
  expect((await sendEvent(svc, P, secret, showEvent('show.live', sampleShow(showId, { state: 'live' }), new Date().toISOString()))).status).toBe(202);
  const v = (await (await svc.api(`/v1/partners/${P}/shows/${showId}`)).json()) as { show: { ingest: { streamKey: string } } };
  return v.show.ingest.streamKey;
}

test('a publish accepted by its key is the show\'s source until it ends; an unknown key is refused', async () => {
  const key = await liveShow('cb1');
  expect((await callback('on-publish', `sk_${'x'.repeat(43)}`, '7')).status).toBe(403);
  expect(await svc.rt.relay.source(P, 'cb1')).toBeNull();
  expect((await callback('on-publish', key, '8')).status).toBe(204);
  expect(await svc.rt.relay.source(P, 'cb1')).toMatchObject({ edgeUrl: EDGE, session: 'nginx:8' });
  expect((await callback('on-publish-done', key, '8')).status).toBe(204);
  expect(await svc.rt.relay.source(P, 'cb1')).toBeNull();
});

test('a key rotated while its publish runs on the nginx edge: that publish is no longer the show\'s source', async () => {
  const old = await liveShow('cb2');
  expect((await callback('on-publish', old, '21')).status).toBe(204);
  expect(await svc.rt.relay.source(P, 'cb2')).not.toBeNull();
  const rotated = await svc.api(`/v1/partners/${P}/shows/cb2/ingest/rotate`, { method: 'POST' });
  expect(rotated.status).toBe(200);
  const { ingest } = (await rotated.json()) as { ingest: { streamKey: string } };
  expect(ingest.streamKey).not.toBe(old);
  // The old key's publish ends on nginx; its on_publish_done names a key that is no show's now.
  expect((await callback('on-publish-done', old, '21')).status).toBe(403);
  expect(await svc.rt.relay.source(P, 'cb2')).toBeNull();
  // The encoder comes back with the new key: the show has its source again; the old key is refused.
  expect((await callback('on-publish', old, '22')).status).toBe(403);
  expect((await callback('on-publish', ingest.streamKey, '23')).status).toBe(204);
  expect(await svc.rt.relay.source(P, 'cb2')).toMatchObject({ edgeUrl: EDGE, session: 'nginx:23' });
});

test('a key rotated between on_publish\'s key check and its write: the publish is refused and the show has no source', async () => {
  // The window: check() found the old key current (showOfKey), then the rotation's script dropped the
  // source, then on_publish wrote the old key's publish back as the source (no TTL). Its on_publish_done
  // names a key that is no show's (403): the source was never cleared. A hook on the runtime's relay
  // repository rotates the key right after the check, every time.
  const old = await liveShow('cb3');
  const relay = svc.rt.relay;
  const showOfKey = relay.showOfKey.bind(relay);
  let rotatedKey = '';
  relay.showOfKey = async (k: string) => {
    const found = await showOfKey(k);
    relay.showOfKey = showOfKey;
    const rotated = await svc.api(`/v1/partners/${P}/shows/cb3/ingest/rotate`, { method: 'POST' });
    expect(rotated.status).toBe(200);
    rotatedKey = ((await rotated.json()) as { ingest: { streamKey: string } }).ingest.streamKey;
    return found;
  };
  try {
    expect((await callback('on-publish', old, '31')).status).toBe(403);
  } finally {
    relay.showOfKey = showOfKey;
  }
  expect(rotatedKey).not.toBe('');
  expect(await svc.rt.relay.source(P, 'cb3')).toBeNull();
  // The new key is accepted as before.
  expect((await callback('on-publish', rotatedKey, '32')).status).toBe(204);
  expect(await svc.rt.relay.source(P, 'cb3')).toMatchObject({ edgeUrl: EDGE, session: 'nginx:32' });
});


/**
 * Rotation is how a leaked stream key is revoked, also on an ended or cancelled show: a later event can
 * make the show live again (CONTRACT §3), and its old key must not publish then. A rotation there was
 * made a 409 for a few commits this session (attack on npm start: "the new key can never publish"); the
 * review found it kept a leaked key alive. So: 200 with a new key, the old one gone.
 */
test.each(['show.ended', 'show.cancelled'] as const)('rotating the stream key of a show after %s issues a new key; live again, the new key is the show\'s', async (type) => {
  const showId = type === 'show.ended' ? 'cb-end' : 'cb-cancel';
  const key = await liveShow(showId);
  const at = Date.now();
  expect((await sendEvent(svc, P, secret, showEvent(type, sampleShow(showId), new Date(at + 1000).toISOString()))).status).toBe(202);
  const r = await svc.api(`/v1/partners/${P}/shows/${showId}/ingest/rotate`, { method: 'POST' });
  expect(r.status).toBe(200);
  const rotated = ((await r.json()) as { ingest: { streamKey: string } }).ingest.streamKey;
  expect(rotated).not.toBe(key);
  expect((await sendEvent(svc, P, secret, showEvent('show.live', sampleShow(showId, { state: 'live' }), new Date(at + 2000).toISOString()))).status).toBe(202);
  const view = (await (await svc.api(`/v1/partners/${P}/shows/${showId}`)).json()) as { show: { ingest: { streamKey: string } } };
  expect(view.show.ingest.streamKey).toBe(rotated);
  // The leaked key is revoked: live again, it is refused and the new one publishes.
  expect((await callback('on-publish', key, type === 'show.ended' ? '31' : '32')).status).toBe(403);
  expect((await callback('on-publish', rotated, type === 'show.ended' ? '33' : '34')).status).toBe(204);
});

/**
 * Attack on the nginx edge's callbacks: nginx-rtmp appends the publisher's own query string raw after
 * the fields it writes (`…&name=<stream>&type=live&<args>`), so an encoder publishing
 * `rtmp://edge/live/anything?name=<a show's key>` sends `name` twice. The route read the last one: the
 * key checked was the injected one, 204, and nginx accepted a publish of `anything` (no show's key).
 */
test('a callback that repeats a field (the publisher\'s own query string appended by nginx) is refused', async () => {
  const key = await liveShow('cb-dup');
  const raw = (what: 'on-publish' | 'on-publish-done', body: string): Promise<Response> =>
    svc.api(`/v1/relay/edge/${what}`, { key: null, method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
  // The stream published is `anything`; the injected name is the show's key.
  expect((await raw('on-publish', `app=live&clientid=41&call=publish&name=anything&type=live&name=${encodeURIComponent(key)}`)).status).toBe(403);
  expect(await svc.rt.relay.source(P, 'cb-dup')).toBeNull();
  // The key first and something else after: refused too (which of the two nginx published is not guessed).
  expect((await raw('on-publish', `app=live&clientid=42&call=publish&name=${encodeURIComponent(key)}&type=live&name=x`)).status).toBe(403);
  // A session id injected after nginx's own.
  expect((await raw('on-publish', `app=live&clientid=43&call=publish&name=${encodeURIComponent(key)}&type=live&clientid=7`)).status).toBe(403);
  expect(await svc.rt.relay.source(P, 'cb-dup')).toBeNull();
  // Other parameters of the publisher's (unread by the route) do not matter: accepted.
  expect((await raw('on-publish', `app=live&clientid=44&call=publish&name=${encodeURIComponent(key)}&type=live&token=abc&x=1`)).status).toBe(204);
  expect(await svc.rt.relay.source(P, 'cb-dup')).toMatchObject({ edgeUrl: EDGE, session: 'nginx:44' });
  expect((await raw('on-publish-done', `app=live&clientid=44&call=publish_done&name=${encodeURIComponent(key)}&token=abc&x=1`)).status).toBe(204);
  expect(await svc.rt.relay.source(P, 'cb-dup')).toBeNull();
});

test.each<[string, (key: string) => RequestInit]>([
  ['no name', () => form({ app: 'live', clientid: '1' })],
  ['an empty name', () => form({ app: 'live', name: '', clientid: '1' })],
  ['a name over 512 characters', (k) => form({ app: 'live', name: k + 'x'.repeat(600), clientid: '1' })],
  ['a clientid over 64 characters', (k) => form({ app: 'live', name: k, clientid: '9'.repeat(65) })],
  ['an app over 64 characters', (k) => form({ app: 'l'.repeat(65), name: k, clientid: '1' })],
  ['the key with a trailing space', (k) => form({ app: 'live', name: `${k} `, clientid: '1' })],
  ['the key with a zero-width space', (k) => form({ app: 'live', name: `${k}\u200b`, clientid: '1' })],
  ['the key upper-cased', (k) => form({ app: 'live', name: k.toUpperCase(), clientid: '1' })],
  ['a name __proto__', () => form({ app: 'live', name: '__proto__', clientid: '1' })],
  ['a lone surrogate name', () => form({ app: 'live', name: '\ud800', clientid: '1' })],
  ['a form field __proto__ carrying the key', (k) => ({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `__proto__=${encodeURIComponent(k)}&clientid=1` })],
  ['JSON with __proto__.name', (k) => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: `{"__proto__":{"name":"${k}"},"clientid":"1"}` })],
  ['a JSON array', (k) => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify([k]) })],
  ['text/plain', (k) => ({ method: 'POST', headers: { 'content-type': 'text/plain' }, body: `name=${k}` })],
  ['the key in the query string only', () => ({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'clientid=1' })],
])('on_publish with %s: refused (4xx), the show has no source', async (_what, init) => {
  const key = await liveShow('cb-hostile');
  const r = await svc.api(`/v1/relay/edge/on-publish?name=${encodeURIComponent(key)}`, { key: null, ...init(key) });
  expect(r.status).toBeGreaterThanOrEqual(400);
  expect(r.status).toBeLessThan(500);
  expect(await svc.rt.relay.source(P, 'cb-hostile')).toBeNull();
});

// The repeated fields are collected in one pass: an array copied at each repeat took 70 s of CPU for
// this body (just under the 256 KiB limit), the event loop blocked.
test('a callback body of one field repeated 36 000 times is refused', async () => {
  const r = await svc.api('/v1/relay/edge/on-publish', { key: null, method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'name=1&'.repeat(36_000) });
  expect(r.status).toBe(403);
});

/**
 * A second encoder on the same key while the first publishes (a backup encoder, or a reconnect while
 * nginx still holds the old connection): nginx-rtmp asks on_publish before its live module refuses the
 * second publisher ("already publishing"), then sends that publisher's on_publish_done. The source was
 * written over with the second session, and its done cleared it: the show lost its source while the
 * first encoder still published (its mirrors stopped mid-show).
 */
test("a second publish on a key whose publish runs: the running publish's source stays through the second's end", async () => {
  const key = await liveShow('cb-second');
  expect((await callback('on-publish', key, '51')).status).toBe(204);
  expect((await callback('on-publish', key, '52')).status).toBe(204); // nginx decides: it refuses a second publisher
  expect(await svc.rt.relay.source(P, 'cb-second')).toMatchObject({ edgeUrl: EDGE, session: 'nginx:51' });
  expect((await callback('on-publish-done', key, '52')).status).toBe(204);
  expect(await svc.rt.relay.source(P, 'cb-second')).toMatchObject({ edgeUrl: EDGE, session: 'nginx:51' });
  // The first publish ends; the encoder comes back: its publish is the source again, and its end clears it.
  expect((await callback('on-publish-done', key, '51')).status).toBe(204);
  expect(await svc.rt.relay.source(P, 'cb-second')).toBeNull();
  expect((await callback('on-publish', key, '53')).status).toBe(204);
  expect(await svc.rt.relay.source(P, 'cb-second')).toMatchObject({ edgeUrl: EDGE, session: 'nginx:53' });
  expect((await callback('on-publish-done', key, '53')).status).toBe(204);
  expect(await svc.rt.relay.source(P, 'cb-second')).toBeNull();
});

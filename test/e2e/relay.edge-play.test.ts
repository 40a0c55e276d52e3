/**
 * The show's stream key is the encoder's credential to publish; it used to be enough to play the show
 * from the embedded edge too (anyone given the key, or who saw it on an encoder, could watch the show
 * from the edge). A play now needs the service's play token for the stream (`?play=`, an HMAC under a
 * key derived from SECRETS_KEY, src/relay/ingest.edge.ts edgePlayToken), which the relay's own readers
 * have, on any host; SECRETS_KEY_PREVIOUS's tokens still play (a rotation in progress). Real Redis, the
 * service's embedded edge, raw RTMP clients; the relay's ffmpeg readers with the token:
 * test/e2e/relay.push.test.ts.
 */
import { randomBytes } from 'node:crypto';
import { SecretBox } from '../../src/lib/crypto.js';
import { testPort } from '../helpers/ports.js';
import { EDGE_PLAY_LABEL, edgePlayToken, startIngestEdge } from '../../src/relay/ingest.edge.js';
import { logSink } from '../helpers/log-sink.js';
import { scheduledIngest } from '../helpers/relay.js';
import { AMF_NULL, amfNumber, amfString, chunk, streamOn, type Client } from '../helpers/rtmp-client.js';
import { createPartner, startService, waitFor, type TestService } from '../helpers/service.js';

let svc: TestService;
const P = 'atk-play';
const PREVIOUS = randomBytes(32).toString('base64');
const clients: Client[] = [];

beforeAll(async () => {
  svc = await startService({
    workers: true,
    edge: true,
    env: { SECRETS_KEY: randomBytes(32).toString('base64'), SECRETS_KEY_PREVIOUS: PREVIOUS, KEY_PREFIX: 'pl' + randomBytes(2).toString('hex'), LOG_LEVEL: 'silent' },
  });
}, 60_000);
afterAll(async () => {
  for (const c of clients) c.socket.destroy();
  await svc?.close();
});

const onStream = (cmd: string, name: string) => chunk(20, Buffer.concat([amfString(cmd), amfNumber(3), AMF_NULL, amfString(name)]), 1);

/** Plays `name`: 'played' once the edge started the play, 'refused' once it closed the connection without. */
async function play(port: number, name: string): Promise<{ outcome: 'played' | 'refused'; said: string }> {
  const c = await streamOn(port);
  clients.push(c);
  let closed = false;
  void c.closed.then(() => (closed = true));
  c.socket.write(onStream('play', name));
  await waitFor(async () => closed || c.received().includes('NetStream.Play.Start'), 10_000, 20);
  const said = c.received().toString('latin1');
  c.socket.destroy();
  return { outcome: said.includes('NetStream.Play.Start') ? 'played' : 'refused', said };
}

test('the stream key alone does not play a show from the edge; the service play token does', async () => {
  const { key, port } = await scheduledIngest(svc, P, await createPartner(svc, P), 's1');

  const pub = await streamOn(port);
  clients.push(pub);
  pub.socket.write(onStream('publish', key));
  await waitFor(async () => pub.received().includes('NetStream.Publish.Start'), 10_000, 20);
  await waitFor(async () => (await svc.rt.relay.source(P, 's1')) !== null, 10_000);

  const [current, previous] = svc.rt.box.derivedKeys(EDGE_PLAY_LABEL);
  const stranger = new SecretBox(randomBytes(32).toString('base64')).derivedKeys(EDGE_PLAY_LABEL)[0]!;
  const refusedOnes = {
    'the stream key alone': key,
    'an empty token': `${key}?play=`,
    'a token of another secret': `${key}?play=${edgePlayToken(stranger, key)}`,
    'the token of another stream': `${key}?play=${edgePlayToken(current!, `${key}x`)}`,
    'SECRETS_KEY itself as the key': `${key}?play=${edgePlayToken(Buffer.from(PREVIOUS, 'base64'), key)}`,
  };
  for (const [what, name] of Object.entries(refusedOnes)) {
    const r = await play(port, name);
    expect({ what, outcome: r.outcome, unauthorized: r.said.includes('NetStream.Play.Unauthorized') }).toEqual({ what, outcome: 'refused', unauthorized: true });
  }
  // The relay's readers' token (SECRETS_KEY's), and one of SECRETS_KEY_PREVIOUS's (a process not yet
  // given the new key, in a rotation), play.
  expect((await play(port, `${key}?play=${edgePlayToken(current!, key)}`)).outcome).toBe('played');
  expect((await play(port, `${key}?play=${edgePlayToken(previous!, key)}`)).outcome).toBe('played');
  // The refusals did not disturb the publish.
  expect(pub.socket.destroyed).toBe(false);
  expect(await svc.rt.relay.source(P, 's1')).not.toBeNull();
}, 60_000);

test('a refused play is logged without the key or the token', async () => {
  // The edge's log line names the session only (the refused name carries the stream key).
  const { log, lines } = logSink<{ msg: string }>();
  const edge = await startIngestEdge({ port: await testPort(), host: '127.0.0.1', relay: svc.rt.relay, shows: svc.rt.shows, log, playKeys: svc.rt.box.derivedKeys(EDGE_PLAY_LABEL) });
  try {
    const name = `sk_${'k'.repeat(43)}?play=${'t'.repeat(43)}`;
    expect((await play(edge.port, name)).outcome).toBe('refused');
    await waitFor(async () => lines.some((l) => l.msg.startsWith('ingest play refused')), 5_000, 20);
    expect(JSON.stringify(lines)).not.toMatch(/kkkk|tttt/);
  } finally {
    await edge.close();
  }
}, 30_000);

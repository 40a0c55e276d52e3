/**
 * node-media-server writes every packet of a publish to every player of its stream without waiting for
 * the player's socket to drain, and those writes kept the player's idle timeout from firing: a player
 * that reads nothing (a wedged reader) made the edge's thread queue
 * the whole stream for as long as it stayed connected, memory without bound in the relay process.
 * The edge now drops a player more than RTMP_BUFFER_LIMITS.playerBacklog behind; the publish and the
 * other readers go on. Real Redis, the service's embedded edge, raw RTMP clients.
 */
import { randomBytes } from 'node:crypto';
import { EDGE_PLAY_LABEL, edgePlayToken, RTMP_BUFFER_LIMITS } from '../../src/relay/ingest.edge.js';
import { scheduledIngest } from '../helpers/relay.js';
import { AMF_NULL, amfNumber, amfString, chunk, streamOn } from '../helpers/rtmp-client.js';
import { createPartner, startService, waitFor, type TestService } from '../helpers/service.js';

let svc: TestService;
const P = 'atk-backlog';

beforeAll(async () => {
  svc = await startService({ workers: true, edge: true, env: { SECRETS_KEY: randomBytes(32).toString('base64'), KEY_PREFIX: 'bl' + randomBytes(2).toString('hex'), LOG_LEVEL: 'silent' } });
}, 60_000);
afterAll(async () => {
  await svc?.close();
});


/** One video message (an H.264 NALU, keyframe) of `size` bytes on chunk stream 6, in one chunk. */
function video(size: number): Buffer {
  const h = Buffer.alloc(12);
  h[0] = 6;
  h.writeUIntBE(size, 4, 3);
  h[7] = 9;
  h.writeUInt32LE(1, 8);
  const body = Buffer.alloc(size, 0x42);
  body[0] = 0x17;
  body[1] = 0x01;
  return Buffer.concat([h, body]);
}

test('a player that reads nothing is dropped once it is far behind; the publish goes on', async () => {
  const { key, port } = await scheduledIngest(svc, P, await createPartner(svc, P), 's1');

  const pub = await streamOn(port);
  pub.socket.write(chunk(20, Buffer.concat([amfString('publish'), amfNumber(3), AMF_NULL, amfString(key), amfString('live')]), 1));
  await waitFor(async () => pub.received().includes('NetStream.Publish.Start'), 10_000, 20);
  await waitFor(async () => (await svc.rt.relay.source(P, 's1')) !== null, 10_000);

  const player = await streamOn(port);
  // A reader of the service's own (with its play token: the key alone does not play, relay.edge-play.test.ts).
  const name = `${key}?play=${edgePlayToken(svc.rt.box.derivedKeys(EDGE_PLAY_LABEL)[0]!, key)}`;
  player.socket.write(chunk(20, Buffer.concat([amfString('play'), amfNumber(3), AMF_NULL, amfString(name)]), 1));
  await waitFor(async () => player.received().includes('NetStream.Play.Start'), 10_000, 20);
  player.socket.pause(); // reads nothing from here on
  let playerClosed = false;
  void player.closed.then(() => (playerClosed = true));

  const size = 1024 * 1024;
  const chunkSize = Buffer.alloc(4);
  chunkSize.writeUInt32BE(size);
  pub.socket.write(chunk(1, chunkSize));
  // Twice the allowed backlog (the loopback socket buffers take a few MB of it).
  const messages = Math.ceil((2 * RTMP_BUFFER_LIMITS.playerBacklog) / size);
  const frame = video(size - 64);
  for (let i = 0; i < messages && !playerClosed; i++) {
    if (!pub.socket.write(frame)) await new Promise((r) => pub.socket.once('drain', r));
  }
  // A paused socket notices no close: give the edge a moment to check, then read again. The edge
  // closed the connection (what was queued drains, then it ends); it used to stay open, the stream queued.
  await new Promise((r) => setTimeout(r, 1500));
  player.socket.resume();
  await waitFor(async () => playerClosed, 10_000, 50);
  expect(pub.socket.destroyed).toBe(false);
  expect(await svc.rt.relay.source(P, 's1')).not.toBeNull();
  pub.socket.destroy();
}, 60_000);

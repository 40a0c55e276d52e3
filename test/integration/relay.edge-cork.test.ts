/**
 * Found 2026-12-06 (e2e relay.pull, about one run in eight, after the show's key was rotated): one of
 * the relay's readers of a pulled show got the first second of the stream and then nothing for 6 s,
 * while the four others flowed; its supervisor restarted it as stalled (a second publish on that
 * platform, ≈ 7 s without video). Caught at the kill: the edge's thread held ≈ 0.9 MB of the stream for
 * that player, unwritten (its socket corked, not writing, 300+ writes queued; the player's own TCP
 * queues empty), as it did for the other players that had joined at the same packet count.
 * node-media-server corks a player's socket at the first of every ten packets and uncorks it on the
 * next tick after the tenth: a tenth and an eleventh packet read from the publisher in one go corked it
 * again before that uncork ran, and it wrote nothing until a read ended on that player's tenth packet.
 * Here a publisher (a bare RTMP client) sends batches of audio frames, one write each, sized so that
 * no batch ends on the player's tenth packet: every packet must still reach the player.
 */
import { Worker } from 'node:worker_threads';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { EDGE_THREAD, edgePlayToken, NMS_CONFIG, NMS_PATHS, RELAY_CODECS, RTMP_BUFFER_LIMITS } from '../../src/relay/ingest.edge.js';
import { AMF_NULL, amfNumber, amfString, chunk, streamOn, type Client } from '../helpers/rtmp-client.js';
import { testPort } from '../helpers/ports.js';
import { waitFor } from '../helpers/service.js';

let worker: Worker;
let port: number;
const playKey = randomBytes(32);
const clients: Client[] = [];

beforeAll(async () => {
  port = await testPort();
  worker = new Worker(EDGE_THREAD, { eval: true, workerData: { paths: NMS_PATHS, config: NMS_CONFIG, limits: RTMP_BUFFER_LIMITS, codecs: RELAY_CODECS, host: '127.0.0.1', port, playKeys: [playKey.toString('hex')] } });
  await new Promise<void>((res) => worker.on('message', (m: { type: string }) => m.type === 'listening' && res()));
});
afterAll(async () => {
  for (const c of clients) c.socket.destroy();
  await worker.terminate();
});

const onStream = (name: string, streamName: string) => chunk(20, Buffer.concat([amfString(name), amfNumber(3), AMF_NULL, amfString(streamName)]), 1);
const seen = (c: Client, text: string) => waitFor(async () => c.received().includes(text), 10_000, 20);

// A publisher on `key` and a player of it, both started; `before`: what the player had received then.
async function publishAndPlay(key: string): Promise<{ publisher: Client; player: Client; before: number }> {
  const publisher = await streamOn(port);
  const player = await streamOn(port);
  clients.push(publisher, player);
  publisher.socket.write(onStream('publish', key));
  await seen(publisher, 'NetStream.Publish.Start');
  player.socket.write(onStream('play', `${key}?play=${edgePlayToken(playKey, key)}`));
  await seen(player, 'NetStream.Play.Start');
  await new Promise((r) => setTimeout(r, 100));
  return { publisher, player, before: player.received().length };
}
// AAC frames of 20 bytes (0xaf 0x01: AAC, a raw frame); the player is sent each as one 32-byte chunk.
const frame = chunk(8, Buffer.concat([Buffer.from([0xaf, 0x01]), Buffer.alloc(18, 0x21)]), 1);

test("every packet of a publish reaches its player, however the publisher's packets are grouped in its reads", async () => {
  const { publisher, player, before } = await publishAndPlay('corkkey1');

  let sent = 0;
  for (let b = 0; b < 40; b++) {
    // 11 frames, or 12 where 11 would end the batch on the player's tenth packet (every batch crosses one).
    const n = (sent + 11) % 10 === 0 ? 12 : 11;
    publisher.socket.write(Buffer.concat(Array.from({ length: n }, () => frame)));
    sent += n;
    await new Promise((r) => setTimeout(r, 20));
  }
  const want = sent * 32;
  await waitFor(async () => player.received().length - before >= want, 10_000, 20).catch(() => undefined);
  expect({ frames: sent, received: player.received().length - before }).toEqual({ frames: sent, received: want });
});

// The writes the edge makes for the player, counted by the kernel (this process's write syscalls: the
// edge is a thread of it). node-media-server batches a player's packets ten to a write; once a cork came
// while the socket was corked, the uncork that followed left the rest of those ten to go out one write
// each (≈ 9 writes a batch here instead of 1: the edge, the reader and its sink all paid per write).
const writeSyscalls = () => Number(/^syscw: (\d+)$/m.exec(readFileSync('/proc/self/io', 'utf8'))![1]);

test("a player's packets still go out batched, not one write each, when a batch crosses its tenth packet", async () => {
  const { publisher, player, before } = await publishAndPlay('corkkey2');
  const batches = 40;
  let sent = 0;
  const writesBefore = writeSyscalls();
  for (let b = 0; b < batches; b++) {
    const n = (sent + 15) % 10 === 0 ? 16 : 15;
    publisher.socket.write(Buffer.concat(Array.from({ length: n }, () => frame)));
    sent += n;
    await new Promise((r) => setTimeout(r, 20));
  }
  await waitFor(async () => player.received().length - before >= sent * 32, 10_000, 20).catch(() => undefined);
  const writes = writeSyscalls() - writesBefore;
  expect(player.received().length - before).toBe(sent * 32);
  // The publisher's own writes (one a batch), at most two edge writes a batch for the player, and slack
  // for the RTMP acknowledgements and timers: the unbatched edge made ≈ 10 a batch.
  expect({ batches, writes: writes <= batches * 4 ? 'batched' : writes }).toEqual({ batches, writes: 'batched' });
});

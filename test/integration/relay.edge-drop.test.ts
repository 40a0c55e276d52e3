/**
 * The edge thread's drop() (src/relay/ingest.edge.ts), run with a node-media-server session that can
 * be made to fail (test/fixtures/nms-session-faults.cjs): a thrown value whose name/code cannot be
 * sent to the main thread does not end the thread; and when stop() itself fails, the dropped session
 * neither keeps its stream key (the same key can publish again) nor stays a player of another session's
 * publish (whose next packet would then throw).
 */
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { testPort } from '../helpers/ports.js';
import { randomBytes } from 'node:crypto';
import { EDGE_THREAD, edgePlayToken, NMS_CONFIG, NMS_PATHS, RELAY_CODECS, RTMP_BUFFER_LIMITS } from '../../src/relay/ingest.edge.js';
import { AMF_NULL, amfNumber, amfString, chunk, command, connectOk, handshaken, type Client } from '../helpers/rtmp-client.js';
import { waitFor } from '../helpers/service.js';

const FAULTY = fileURLToPath(new URL('../fixtures/nms-session-faults.cjs', import.meta.url));
let worker: Worker;
let port: number;
let threadError: unknown;
/** The thread's play key: a play carries its token (src/relay/ingest.edge.ts edgePlayToken). */
const playKey = randomBytes(32);
const clients: Client[] = [];

beforeAll(async () => {
  port = await testPort();
  worker = new Worker(EDGE_THREAD, { eval: true, workerData: { paths: { ...NMS_PATHS, session: FAULTY }, config: NMS_CONFIG, limits: RTMP_BUFFER_LIMITS, codecs: RELAY_CODECS, port, host: '127.0.0.1', playKeys: [playKey.toString('hex')] } });
  worker.on('error', (err) => (threadError = err));
  await new Promise<void>((res) => worker.on('message', (m: { type: string }) => m.type === 'listening' && res()));
});
afterAll(async () => {
  for (const c of clients) c.socket.destroy();
  await worker.terminate();
});

const seen = (c: Client, text: string, from = 0) => waitFor(async () => c.received().subarray(from).includes(text), 10_000, 20);

async function connected(): Promise<Client> {
  const c = await handshaken(port);
  clients.push(c);
  c.socket.write(connectOk);
  await seen(c, 'NetConnection.Connect.Success');
  c.socket.write(command(amfString('createStream'), amfNumber(2), AMF_NULL));
  await seen(c, '_result', c.received().indexOf('NetConnection.Connect.Success'));
  return c;
}
const onStream = (name: string, streamName: string) => chunk(20, Buffer.concat([amfString(name), amfNumber(3), AMF_NULL, amfString(streamName)]), 1);

test('a thrown value whose name and code cannot be cloned drops the session, not the thread', async () => {
  const bad = await connected();
  bad.socket.write(command(amfString('testThrowUncloneable'), amfNumber(3), AMF_NULL));
  await bad.closed;
  await new Promise((r) => setTimeout(r, 200));
  expect(threadError).toBeUndefined();
  await connected(); // still served
});

test('a publishing session whose stop() fails frees its key: the same key publishes again', async () => {
  const first = await connected();
  first.socket.write(onStream('publish', 'samekey1'));
  await seen(first, 'NetStream.Publish.Start');
  first.socket.write(command(amfString('testThrowStopFails'), amfNumber(4), AMF_NULL));
  await first.closed;

  const again = await connected();
  const from = again.received().length;
  again.socket.write(onStream('publish', 'samekey1'));
  await Promise.race([seen(again, 'NetStream.Publish.Start', from), again.closed]); // refused: "already publishing", closed
  expect(again.received().subarray(from).toString('latin1')).toContain('NetStream.Publish.Start');
});

test('a player whose stop() fails leaves the publisher it played: that publish goes on', async () => {
  const publisher = await connected();
  publisher.socket.write(onStream('publish', 'played01'));
  await seen(publisher, 'NetStream.Publish.Start');
  const player = await connected();
  player.socket.write(onStream('play', `played01?play=${edgePlayToken(playKey, 'played01')}`));
  await seen(player, 'NetStream.Play.Start');
  player.socket.write(command(amfString('testThrowStopFails'), amfNumber(4), AMF_NULL));
  await player.closed;

  publisher.socket.write(chunk(8, Buffer.from([0xaf, 0x01, 0x21, 0x00]), 1)); // an AAC audio frame
  await new Promise((r) => setTimeout(r, 200));
  const from = publisher.received().length;
  publisher.socket.write(command(amfString('createStream'), amfNumber(5), AMF_NULL));
  await seen(publisher, '_result', from); // still served: the audio did not drop it
});

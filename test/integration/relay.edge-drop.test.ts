/**
 * The edge thread's drop() (src/relay/ingest.edge.ts), run with a node-media-server session that can
 * be made to fail (test/fixtures/nms-session-faults.cjs): a thrown value whose name/code cannot be
 * sent to the main thread does not end the thread; and when stop() itself fails, the dropped session
 * neither keeps its stream key (the same key can publish again) nor stays a player of another session's
 * publish (whose next packet would then throw). And, on a second thread with the pending cap, a
 * connection that publishes again counts as pending while its key is checked (the hand-built edges of
 * this file answer the key checks themselves: no Redis).
 */
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { testPort } from '../helpers/ports.js';
import { randomBytes } from 'node:crypto';
import { EDGE_THREAD, edgePlayToken, NMS_CONFIG, NMS_PATHS, RELAY_CODECS, RTMP_BUFFER_LIMITS } from '../../src/relay/ingest.edge.js';
import { AMF_NULL, amfNumber, amfString, chunk, command, connectOk, handshaken, streamOn, type Client } from '../helpers/rtmp-client.js';
import { waitFor } from '../helpers/service.js';

const FAULTY = fileURLToPath(new URL('../fixtures/nms-session-faults.cjs', import.meta.url));
let worker: Worker;
let port: number;
let threadError: unknown;
/** The thread's play key: a play carries its token (src/relay/ingest.edge.ts edgePlayToken). */
const playKey = randomBytes(32);
const clients: Client[] = [];

/** An edge thread as startIngestEdge builds it (its workerData), with `extra` over it; resolves once it listens. */
async function edgeThread(extra: Record<string, unknown>): Promise<Worker> {
  const w = new Worker(EDGE_THREAD, { eval: true, workerData: { paths: NMS_PATHS, config: NMS_CONFIG, limits: RTMP_BUFFER_LIMITS, codecs: RELAY_CODECS, host: '127.0.0.1', playKeys: [playKey.toString('hex')], ...extra } });
  await new Promise<void>((res) => w.on('message', (m: { type: string }) => m.type === 'listening' && res()));
  return w;
}

beforeAll(async () => {
  port = await testPort();
  worker = await edgeThread({ paths: { ...NMS_PATHS, session: FAULTY }, port });
  worker.on('error', (err) => (threadError = err));
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

/**
 * A connection whose publish's key was accepted, that stopped (deleteStream) and publishes again on the
 * same socket, counts as pending for its address again while its new key is checked: it did not, so one
 * connection could publish made-up keys one after another past RELAY_RTMP_PENDING_PER_ADDRESS, each
 * check waiting (a Redis outage). An 'accepted' for its earlier publish, arriving late, does not count
 * for the new one. Cap 1 here: another connection from the address is refused while it is pending.
 */
test('a connection that publishes again after an accepted publish is pending while its new key is checked', async () => {
  const edgePort = await testPort();
  const edge = await edgeThread({ port: edgePort, pendingPerAddress: 1 });
  const messages: { type: string; id?: string; n?: number }[] = [];
  edge.on('message', (m: { type: string }) => messages.push(m));
  const next = (type: string, from = messages.length) => waitFor(async () => messages.slice(from).find((m) => m.type === type), 10_000, 10);
  const address = '127.0.0.21';
  /** Another connection from the address: 'held' (the edge took it; closed again here) or 'refused' (over the cap). */
  const probe = async (): Promise<'held' | 'refused'> => {
    const c = await handshaken(edgePort, address).catch(() => undefined);
    if (!c) return 'refused';
    const gone = next('gone');
    c.socket.destroy();
    await gone;
    return 'held';
  };
  try {
    const c = await streamOn(edgePort, address);
    clients.push(c);
    let published = next('postPublish');
    c.socket.write(onStream('publish', 'republish1'));
    const first = await published;
    edge.postMessage({ type: 'accepted', id: first.id, n: first.n });
    await waitFor(async () => (await probe()) === 'held', 5_000, 10);
    const done = next('donePublish');
    c.socket.write(command(amfString('deleteStream'), amfNumber(5), AMF_NULL, amfNumber(1)));
    await done;
    published = next('postPublish');
    c.socket.write(onStream('publish', 'republish1'));
    const second = await published;
    const whileChecked = await probe();
    edge.postMessage({ type: 'accepted', id: first.id, n: first.n }); // the earlier publish's, late
    const afterStaleAnswer = await probe();
    edge.postMessage({ type: 'accepted', id: second.id, n: second.n });
    const afterItsAnswer = await waitFor(async () => ((await probe()) === 'held' ? 'held' : undefined), 5_000, 10).catch(() => 'refused');
    expect({ sameConnection: second.id === first.id, whileChecked, afterStaleAnswer, afterItsAnswer }).toEqual({ sameConnection: true, whileChecked: 'refused', afterStaleAnswer: 'refused', afterItsAnswer: 'held' });
  } finally {
    await edge.terminate();
  }
});

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
 * A hand-built edge thread on its own port (`extra` over its workerData) and what it sent: `next` waits
 * for a message of a type sent from now (or `from`), `tell` posts one and waits until the thread has
 * handled it (its answer to `ack`), `probe` makes another connection from `address`.
 */
async function edgeOwnPort(extra: Record<string, unknown>) {
  const edgePort = await testPort();
  const edge = await edgeThread({ port: edgePort, ...extra });
  const messages: { type: string; id?: string; n?: number; ack?: number; addresses?: string[] }[] = [];
  edge.on('message', (m: { type: string }) => messages.push(m));
  const next = (type: string, from = messages.length) => waitFor(async () => messages.slice(from).find((m) => m.type === type), 10_000, 10);
  let acks = 0;
  const tell = async (m: Record<string, unknown>): Promise<void> => {
    const ack = ++acks;
    const handled = waitFor(async () => messages.find((x) => x.type === 'handled' && x.ack === ack), 10_000, 10);
    edge.postMessage({ ...m, ack });
    await handled;
  };
  /** Another connection from `address`: 'held' (the edge took it; closed again here) or 'refused' (over the cap). */
  const probe = async (address: string): Promise<'held' | 'refused'> => {
    const c = await handshaken(edgePort, address).catch(() => undefined);
    if (!c) return 'refused';
    const gone = next('gone');
    c.socket.destroy();
    await gone;
    return 'held';
  };
  /** A connection from `address` that publishes `key`, and the thread's postPublish for it. */
  const publishing = async (address: string, key: string) => {
    const c = await streamOn(edgePort, address);
    clients.push(c);
    const published = next('postPublish');
    c.socket.write(onStream('publish', key));
    return { c, publish: await published };
  };
  /** `c` stops its publish (deleteStream) and publishes `key` again on the same connection: the thread's postPublish for it, or 'closed'. */
  const publishAgain = async (c: Client, key: string) => {
    const done = next('donePublish');
    c.socket.write(command(amfString('deleteStream'), amfNumber(5), AMF_NULL, amfNumber(1)));
    await done;
    let closed = false;
    void c.closed.then(() => (closed = true));
    const from = messages.length;
    c.socket.write(onStream('publish', key));
    return waitFor(async () => messages.slice(from).find((m) => m.type === 'postPublish') ?? (closed && ('closed' as const)), 10_000, 10);
  };
  return { edge, edgePort, messages, next, tell, probe, publishing, publishAgain };
}

/**
 * A connection whose publish's key was accepted, that stopped (deleteStream) and publishes again on the
 * same socket, counts as pending for its address again while its new key is checked: it did not, so one
 * connection could publish made-up keys one after another past RELAY_RTMP_PENDING_PER_ADDRESS, each
 * check waiting (a Redis outage). An 'accepted' for its earlier publish, arriving late, does not count
 * for the new one (probed once the thread has handled it: probed at once, the probe could come first).
 * Cap 1 here: another connection from the address is refused while it is pending.
 */
test('a connection that publishes again after an accepted publish is pending while its new key is checked', async () => {
  const { edge, tell, probe, publishing, publishAgain } = await edgeOwnPort({ pendingPerAddress: 1 });
  const address = '127.0.0.21';
  try {
    const { c, publish: first } = await publishing(address, 'republish1');
    await tell({ type: 'accepted', id: first.id, n: first.n });
    const held = await probe(address);
    const second = await publishAgain(c, 'republish1');
    if (second === 'closed') throw new Error('the connection was closed on its publish again');
    const whileChecked = await probe(address);
    await tell({ type: 'accepted', id: first.id, n: first.n }); // the earlier publish's, late
    const afterStaleAnswer = await probe(address);
    await tell({ type: 'accepted', id: second.id, n: second.n });
    const afterItsAnswer = await probe(address);
    expect({ held, sameConnection: second.id === first.id, whileChecked, afterStaleAnswer, afterItsAnswer }).toEqual({ held: 'held', sameConnection: true, whileChecked: 'refused', afterStaleAnswer: 'refused', afterItsAnswer: 'held' });
  } finally {
    await edge.terminate();
  }
});

/**
 * A publish again on a connection whose earlier publish checked out, while its address is at the cap,
 * is closed, as a new connection over the cap is: it was counted with no check of the cap, so N idle
 * connections that once published a real key could all publish made-up ones (an outage: no check
 * answers) and hold N pending past the cap. Cap 1: another connection from the address holds it.
 */
test('a connection that publishes again while its address is at the pending cap is closed', async () => {
  const { edge, edgePort, messages, next, tell, publishing, publishAgain } = await edgeOwnPort({ pendingPerAddress: 1 });
  const address = '127.0.0.22';
  try {
    const { c, publish: first } = await publishing(address, 'overcap01');
    await tell({ type: 'accepted', id: first.id, n: first.n });
    const other = await handshaken(edgePort, address); // pending: the address is at the cap
    clients.push(other);
    const from = messages.length;
    const again = await publishAgain(c, 'overcap02');
    const reported = again === 'closed' ? (await next('pendingOverCap', from)).addresses : undefined; // at the thread's next count
    expect({ again, reported }).toEqual({ again: 'closed', reported: [address] });
  } finally {
    await edge.terminate();
  }
});

/**
 * A refusal names the publish it refuses, as 'accepted' does: publish 1 (a made-up key, its check slow),
 * stopped (deleteStream), publish 2 on the same connection (a real key): publish 1's refusal, late,
 * closed the connection and cut publish 2. It does nothing now; publish 2's own refusal closes it.
 */
test("a late refusal of a connection's earlier publish leaves its publish again alone", async () => {
  const { edge, tell, publishing, publishAgain } = await edgeOwnPort({ pendingPerAddress: 4 });
  const address = '127.0.0.23';
  try {
    const { c, publish: first } = await publishing(address, 'madeup01');
    const second = await publishAgain(c, 'realkey1');
    if (second === 'closed') throw new Error('the connection was closed on its publish again');
    let closed = false;
    void c.closed.then(() => (closed = true));
    await tell({ type: 'reject', id: first.id, n: first.n }); // publish 1's, late
    const from = c.received().length;
    c.socket.write(command(amfString('createStream'), amfNumber(6), AMF_NULL));
    const afterStale = await waitFor(async () => (c.received().subarray(from).includes('_result') ? 'served' : closed && 'closed'), 10_000, 10);
    await tell({ type: 'reject', id: second.id, n: second.n });
    await waitFor(async () => closed, 5_000, 10).catch(() => undefined);
    expect({ afterStale, afterItsRefusal: closed ? 'closed' : 'open' }).toEqual({ afterStale: 'served', afterItsRefusal: 'closed' });
  } finally {
    await edge.terminate();
  }
});

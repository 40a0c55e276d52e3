/**
 * The RTMP ingest edge is open to anyone who can reach RELAY_RTMP_PORT (partners' encoders publish
 * there), and node-media-server trusts what a client sends: an RTMP `connect` without an `app`, an
 * AMF command cut short, a control message with no body all throw inside its socket handlers. In the
 * edge's thread such an exception ended the thread, and `npm start` (src/main/all.ts) exited with it:
 * one TCP client, before any stream key was checked, took the API, the workers and every relayed show
 * down. A real child process started like `npm start`, against a redis-server this test spawns: after
 * each malformed session it is still up, answers HTTP, and its edge still serves new sessions and the
 * ones it had (a session opened before the garbage creates its stream afterwards).
 */
import { AMF_NULL, amfNumber, amfObject, amfString, chunk, command, connectOk, handshaken } from '../helpers/rtmp-client.js';
import { waitFor } from '../helpers/service.js';
import { edgeProcessPerFile } from '../helpers/edge-process.js';

const edge = edgeProcessPerFile();

/** What made node-media-server throw in the edge's thread (each alone ended `npm start`). */
const MALFORMED: Record<string, Buffer> = {
  'connect without app': command(amfString('connect'), amfNumber(1), amfObject({})),
  'connect whose app is a number': command(amfString('connect'), amfNumber(1), amfObject({ app: amfNumber(5) })),
  'connect with a null command object': command(amfString('connect'), amfNumber(1), AMF_NULL),
  'AMF0 command of an unknown type marker': command(Buffer.from([0x99, 0x99, 0x99])),
  // The first message of the session empty: node-media-server has allocated no payload buffer yet.
  'empty set-chunk-size control message': Buffer.concat([chunk(1, Buffer.alloc(0)), Buffer.from([0x03])]),
};

async function alive(): Promise<void> {
  expect(edge.child.proc.exitCode).toBeNull();
  expect(edge.child.proc.signalCode).toBeNull();
  expect((await fetch(`${edge.url}/health/live`)).status).toBe(200);
}

test.each(Object.entries(MALFORMED))('npm start survives an RTMP client that sends: %s (the session alone is dropped)', async (_name, message) => {
  // A session that was there before the garbage, connected.
  const bystander = await handshaken(edge.rtmpPort);
  bystander.socket.write(connectOk);
  await waitFor(async () => bystander.received().includes('NetConnection.Connect.Success'), 10_000, 20);

  const bad = await handshaken(edge.rtmpPort);
  bad.socket.write(message);
  await bad.closed; // the edge drops the session that failed
  await new Promise((r) => setTimeout(r, 300)); // the process would have exited by now
  await alive();

  // The bystander's session goes on: createStream is answered (_result).
  const before = bystander.received().length;
  bystander.socket.write(command(amfString('createStream'), amfNumber(2), AMF_NULL));
  await waitFor(async () => bystander.received().subarray(before).includes('_result'), 10_000, 20);
  bystander.socket.destroy();

  // And new sessions are served.
  const next = await handshaken(edge.rtmpPort);
  next.socket.write(connectOk);
  await waitFor(async () => next.received().includes('NetConnection.Connect.Success'), 10_000, 20);
  next.socket.destroy();
  await alive();
}, 30_000);

test('the warning names the dropped session and where node-media-server failed, never a key', () => {
  const warnings = edge.child.output().split('\n').filter((l) => l.includes('ingest session dropped'));
  expect(warnings.length).toBeGreaterThanOrEqual(Object.keys(MALFORMED).length);
  for (const w of warnings) {
    const line = JSON.parse(w) as { session: string; err: { name: string; at?: string; message?: string } };
    expect(line.session).toMatch(/^[A-Z0-9]{8}$/);
    expect(line.err.name).toMatch(/Error$/);
    expect(line.err.at).toMatch(/node-media-server|node:internal/);
    expect(line.err.message).toBeUndefined();
  }
});

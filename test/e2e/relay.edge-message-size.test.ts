/**
 * node-media-server gives every RTMP chunk stream a buffer of the length its message header announces
 * (up to 16 MiB) and keeps it while the connection is open, on any of ~830 chunk stream ids: one TCP
 * client of the ingest edge, before `connect` or any stream key, could make `npm start` hold 13 GiB
 * of what it sent (measured: 60 announced 16 MiB messages, 1 GiB sent before any command, grew the
 * process by 850 MB, kept until the connection closed). The edge now bounds a session's message
 * buffers (src/relay/ingest.edge.ts RTMP_BUFFER_LIMITS) and drops a session over them; the process, the
 * other sessions and new ones carry on. A real child process started like `npm start`, real Redis.
 */
import { RTMP_BUFFER_LIMITS } from '../../src/relay/ingest.edge.js';
import { connectOk, handshaken, type Client } from '../helpers/rtmp-client.js';
import { waitFor } from '../helpers/service.js';
import { edgeProcessPerFile } from '../helpers/edge-process.js';

const edge = edgeProcessPerFile();

/** A type-0 chunk header on chunk stream 64 + `n` (the 2-byte form) announcing a video message of `length` bytes. */
function header(n: number, length: number): Buffer {
  const h = Buffer.alloc(13);
  h[0] = 0; // fmt 0, 2-byte basic header
  h[1] = n;
  h.writeUIntBE(length, 5, 3);
  h[8] = 9; // video
  h.writeUInt32LE(1, 9);
  return h;
}

/** Resolves true once the edge closed the session, false if it is still open after `ms`. */
const droppedWithin = (c: Client, ms: number): Promise<boolean> =>
  Promise.race([c.closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);

async function edgeServes(): Promise<void> {
  expect(edge.child.proc.exitCode).toBeNull();
  expect((await fetch(`${edge.url}/health/live`)).status).toBe(200);
  const next = await handshaken(edge.rtmpPort);
  next.socket.write(connectOk);
  await waitFor(async () => next.received().includes('NetConnection.Connect.Success'), 10_000, 20);
  next.socket.destroy();
}

test('a client announcing a 16 MiB message before connect is dropped at its header; the edge serves the others', async () => {
  const bystander = await handshaken(edge.rtmpPort);
  bystander.socket.write(connectOk);
  await waitFor(async () => bystander.received().includes('NetConnection.Connect.Success'), 10_000, 20);

  const bad = await handshaken(edge.rtmpPort);
  bad.socket.write(Buffer.concat([header(0, 0xffffff), Buffer.alloc(128)]));
  expect(await droppedWithin(bad, 5_000)).toBe(true);
  expect(bystander.socket.destroyed).toBe(false);
  bystander.socket.destroy();
  await edgeServes();
}, 30_000);

test('a client spreading command-sized messages over many chunk streams is dropped once they hold more than a session may before it publishes', async () => {
  const bad = await handshaken(edge.rtmpPort);
  const each = RTMP_BUFFER_LIMITS.commandBytes - 2048; // each one a size a command may have
  const streams = Math.ceil(RTMP_BUFFER_LIMITS.commandBuffers / each) + 4;
  // One 128-byte chunk of each (the default chunk size), then the next stream: every buffer allocated, none completed.
  const parts: Buffer[] = [];
  for (let i = 0; i < streams; i++) parts.push(header(i, each), Buffer.alloc(128));
  bad.socket.write(Buffer.concat(parts));
  expect(await droppedWithin(bad, 5_000)).toBe(true);
  await edgeServes();
}, 30_000);

test('the warning names the session and RTMP_MESSAGE_TOO_LARGE, never a key', () => {
  const warnings = edge.child
    .output()
    .split('\n')
    .filter((l) => l.includes('ingest session dropped'))
    .map((l) => JSON.parse(l) as { session: string; err: { name: string; code?: string; message?: string } });
  expect(warnings.filter((w) => w.err.code === 'RTMP_MESSAGE_TOO_LARGE')).toHaveLength(2);
  for (const w of warnings) {
    expect(w.session).toMatch(/^[A-Z0-9]{8}$/);
    expect(w.err.message).toBeUndefined();
  }
});

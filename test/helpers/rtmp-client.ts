/** A bare RTMP client for edge tests: handshake, then single-chunk messages on chunk stream 3. */
import { createConnection, type Socket } from 'node:net';
import { waitFor } from './service.js';

export const amfString = (s: string): Buffer => {
  const b = Buffer.from(s);
  const len = Buffer.alloc(2);
  len.writeUInt16BE(b.length);
  return Buffer.concat([Buffer.from([0x02]), len, b]);
};
export const amfNumber = (n: number): Buffer => {
  const b = Buffer.alloc(9);
  b[0] = 0x00;
  b.writeDoubleBE(n, 1);
  return b;
};
export const amfObject = (fields: Record<string, Buffer>): Buffer => {
  const parts: Buffer[] = [Buffer.from([0x03])];
  for (const [k, v] of Object.entries(fields)) {
    const len = Buffer.alloc(2);
    len.writeUInt16BE(k.length);
    parts.push(len, Buffer.from(k), v);
  }
  parts.push(Buffer.from([0x00, 0x00, 0x09]));
  return Buffer.concat(parts);
};
export const AMF_NULL = Buffer.from([0x05]);

/** One RTMP message as a type-0 chunk (payload ≤ 128 bytes, the default chunk size). */
export function chunk(type: number, payload: Buffer, streamId = 0): Buffer {
  if (payload.length > 128) throw new Error('one chunk only');
  const h = Buffer.alloc(12);
  h[0] = 3; // fmt 0, chunk stream 3
  h.writeUIntBE(0, 1, 3); // timestamp
  h.writeUIntBE(payload.length, 4, 3);
  h[7] = type;
  h.writeUInt32LE(streamId, 8);
  return Buffer.concat([h, payload]);
}
export const command = (...parts: Buffer[]): Buffer => chunk(20, Buffer.concat(parts));

export interface Client {
  socket: Socket;
  /** Everything the edge sent after its handshake (S0 S1 S2). */
  received(): Buffer;
  closed: Promise<void>;
}

/** `localAddress`: the client's own address (any of 127/8 on Linux), e.g. '127.0.0.2' for a client other than the default one. */
export async function handshaken(port: number, localAddress?: string): Promise<Client> {
  const socket = createConnection({ host: '127.0.0.1', port, ...(localAddress ? { localAddress } : {}) });
  socket.on('error', () => undefined);
  let buf = Buffer.alloc(0);
  socket.on('data', (d: Buffer) => (buf = Buffer.concat([buf, d])));
  let isClosed = false;
  const closed = new Promise<void>((res) => socket.once('close', () => res()));
  void closed.then(() => (isClosed = true));
  await new Promise<void>((res, rej) => {
    socket.once('connect', res);
    socket.once('error', rej);
  });
  socket.write(Buffer.concat([Buffer.from([3]), Buffer.alloc(1536)])); // C0 C1
  // A connection the edge closes at once (over a cap) fails here at once, not after the wait.
  const got = await waitFor(async () => (buf.length >= 1 + 1536 * 2 ? 'handshake' : isClosed && 'closed'), 10_000, 20);
  if (got === 'closed') throw new Error('the edge closed the connection before its handshake');
  socket.write(buf.subarray(1, 1537)); // C2 = S1
  return { socket, received: () => buf.subarray(1 + 1536 * 2), closed };
}

export const connectOk = command(amfString('connect'), amfNumber(1), amfObject({ app: amfString('live'), tcUrl: amfString('rtmp://127.0.0.1/live') }));

/** A session that connected (app `live`) and created its stream (id 1): ready to publish or play. */
export async function streamOn(port: number, localAddress?: string): Promise<Client> {
  const c = await handshaken(port, localAddress);
  c.socket.write(connectOk);
  c.socket.write(command(amfString('createStream'), amfNumber(2), AMF_NULL));
  await waitFor(async () => c.received().includes('_result') && c.received().lastIndexOf('_result') > c.received().indexOf('NetConnection.Connect.Success'), 10_000, 20);
  return c;
}

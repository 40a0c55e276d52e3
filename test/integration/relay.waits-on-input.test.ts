/**
 * waitsOnInput (src/relay/send-queue.ts) reads /proc: whether a process sleeps with its input socket
 * read and nothing queued out. A process found runnable with idle sockets cannot be told apart from
 * one woken for a moment in the middle of its wait on input (ffmpeg polls every ~100 ms; on a starved
 * machine it then waits for a CPU): such a sample is undefined, never "not waiting" — that answer made
 * the relay restart readers of a silent show at the stall time on a loaded CI machine.
 * Real child processes, real loopback TCP.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { waitsOnInput } from '../../src/relay/send-queue.js';
import { waitFor } from '../helpers/service.js';

let server: Server;
let port: number;
const conns: Socket[] = [];
const children: ChildProcess[] = [];

beforeAll(async () => {
  server = createServer((s) => {
    s.on('error', () => undefined);
    conns.push(s);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  for (const c of conns) c.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

let k = 0;
/** A "now" past the shared /proc read's cache, so every sample reads /proc afresh. */
const fresh = (): number => Date.now() + ++k * 1000;

/** A child connected to the server that, once connected, either sleeps or spins on the CPU; resolves once the server holds its connection. */
async function child(mode: 'sleep' | 'spin'): Promise<{ pid: number; conn: Socket }> {
  const before = conns.length;
  const body = mode === 'sleep' ? 'setInterval(() => {}, 1000)' : 'for (;;) {}';
  const c = spawn(process.execPath, ['-e', `require('node:net').connect(${port}, '127.0.0.1', () => { ${body} }).on('error', () => {})`], { stdio: 'ignore' });
  children.push(c);
  await waitFor(async () => conns.length > before, 20_000);
  // the connect callback (and with it the loop or the timer) runs right after the handshake
  await new Promise((r) => setTimeout(r, 300));
  return { pid: c.pid!, conn: conns[conns.length - 1]! };
}

test('a process sleeping with its input read is waiting on its input', async () => {
  const { pid } = await child('sleep');
  await waitFor(async () => waitsOnInput(pid, port, 1024, fresh()) === true, 10_000);
});

test('a runnable process with idle sockets cannot be told (undefined), not "not waiting"', async () => {
  const { pid } = await child('spin');
  const seen: Array<boolean | undefined> = [];
  for (let i = 0; i < 10; i++) {
    seen.push(waitsOnInput(pid, port, 1024, fresh()));
    await new Promise((r) => setTimeout(r, 20));
  }
  // A spinning process is runnable (R) at every sample, whether on a CPU or queued for one.
  expect(seen).toEqual(Array(10).fill(undefined));
});

test('a process with unread input is not waiting on it, runnable or not', async () => {
  const { pid, conn } = await child('spin');
  conn.write(Buffer.alloc(64 * 1024, 1));
  await waitFor(async () => waitsOnInput(pid, port, 1024, fresh()) === false, 10_000);
});

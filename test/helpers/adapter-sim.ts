/**
 * What the adapter-level tests (test/integration/*.adapter.test.ts) share around the simulators: one
 * platform's control API (its effects and the requests it received), and a local receiver for the
 * webhooks a simulator delivers.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import axios from 'axios';
import type { SimEffect, SimRequestRecord } from '../../src/simulators/sim.platform.js';

export interface PlatformSimControl {
  /** A call on `/_sim/<platform><path>`; resolves to the answer's body. */
  control(method: 'GET' | 'PUT' | 'POST', path: string, data?: unknown): Promise<unknown>;
  effects(): Promise<SimEffect[]>;
  /** The requests received after sequence number `since`. */
  requests(since?: number): Promise<SimRequestRecord[]>;
  /** The sequence number of the last request received (0 for none): `requests(await lastSeq())` is what comes after. */
  lastSeq(): Promise<number>;
}

/** `simUrl` is read at each call (the simulators start in beforeAll). */
export function platformSim(simUrl: () => string, platform: string): PlatformSimControl {
  const control = async (method: 'GET' | 'PUT' | 'POST', path: string, data?: unknown): Promise<unknown> => {
    const res = await axios.request({ method, url: `${simUrl()}/_sim/${platform}${path}`, data });
    return res.data as unknown;
  };
  const requests = async (since = 0): Promise<SimRequestRecord[]> => (await control('GET', `/requests?since=${since}`)) as SimRequestRecord[];
  return {
    control,
    effects: async () => (await control('GET', '/effects')) as SimEffect[],
    requests,
    lastSeq: async () => (await requests()).at(-1)?.seq ?? 0,
  };
}

/** A request as a line to compare: `POST /path 200`. */
export const line = (r: SimRequestRecord): string => `${r.method} ${r.path} ${r.status}`;

export interface Delivery {
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface WebhookReceiver {
  url: string;
  /** Every delivery, in order of arrival. */
  got: Delivery[];
  /** Statuses to answer the next deliveries with, in order (then 200). */
  answers: number[];
  close(): Promise<void>;
}

/** A local receiver for webhook deliveries on a free loopback port (`<url>` ends in /hook). */
export async function startReceiver(): Promise<WebhookReceiver> {
  const got: Delivery[] = [];
  const answers: number[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      got.push({ headers: req.headers, body: Buffer.concat(chunks) });
      res.statusCode = answers.shift() ?? 200;
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/hook`, got, answers, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/**
 * Registers beforeAll/afterAll/beforeEach in the calling test file: one receiver (startReceiver) for
 * the file, its deliveries cleared before each test. The fields are read once beforeAll ran.
 */
export function useReceiver(): Pick<WebhookReceiver, 'url' | 'got' | 'answers'> {
  let receiver: WebhookReceiver | undefined;
  const ready = (): WebhookReceiver => {
    if (!receiver) throw new Error('the receiver is not started (useReceiver starts it in beforeAll)');
    return receiver;
  };
  beforeAll(async () => {
    receiver = await startReceiver();
  });
  afterAll(async () => {
    await receiver?.close();
  });
  beforeEach(() => {
    ready().got.length = 0;
  });
  return {
    get url() {
      return ready().url;
    },
    get got() {
      return ready().got;
    },
    get answers() {
      return ready().answers;
    },
  };
}

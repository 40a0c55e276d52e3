/**
 * DNS lookups in flight are capped for the whole process (DNS_LOOKUP_CONCURRENCY, 2 of libuv's 4
 * threadpool threads by default; sharedLookup, src/lib/ssrf.ts). One lookup per partner was not
 * enough: four partners whose name servers drop queries held one thread each, the whole threadpool,
 * and fs (and every other lookup) waited behind them. And the connect-time destination guard
 * (src/lib/destination-guard.ts: platform clients, relay destinations, the HLS proxy) called
 * dns.lookup itself, past every cap.
 *
 * The system resolver is swapped (hostLookup): each dead name blocks a real threadpool thread on its
 * own FIFO (as getaddrinfo blocks on a silent name server) until the test opens that FIFO for writing
 * (the resolver gives up); the live name is looked up for real (localhost, through the threadpool).
 */
import { execFileSync } from 'node:child_process';
import { closeSync, constants, existsSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { lookup } from 'node:dns/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { destinationGuard } from '../../src/lib/destination-guard.js';
import { hostLookup } from '../../src/lib/ssrf.js';
import { createPartner, startService, waitFor, type TestService } from '../helpers/service.js';

const CAP = 2; // DNS_LOOKUP_CONCURRENCY's default
const PARTNERS = ['capa', 'capb', 'capc', 'capd'];

let svc: TestService;
const system = hostLookup.lookup;
const dir = mkdtempSync(join(tmpdir(), 'dns-cap-'));
/** Dead names whose lookup is blocked right now. */
const blocked = new Set<string>();
let maxBlocked = 0;
let liveLookups = 0;

const fifoOf = (host: string): string => join(dir, host);

/** A dead name's lookup: a threadpool thread blocked in open() until its FIFO gets a writer. */
async function silentNameServer(host: string): Promise<never> {
  if (!existsSync(fifoOf(host))) execFileSync('mkfifo', [fifoOf(host)]);
  blocked.add(host);
  maxBlocked = Math.max(maxBlocked, blocked.size);
  try {
    await (await open(fifoOf(host), 'r')).close();
  } finally {
    blocked.delete(host);
  }
  throw Object.assign(new Error(`getaddrinfo EAI_AGAIN ${host}`), { code: 'EAI_AGAIN' });
}

/** The resolver gives up on `host`: its blocked lookup ends (its thread is free again). */
async function giveUp(host: string): Promise<void> {
  await waitFor(async () => {
    try {
      closeSync(openSync(fifoOf(host), constants.O_WRONLY | constants.O_NONBLOCK));
    } catch {
      // ENXIO: the reader has not reached open() yet
    }
    return !blocked.has(host);
  });
}

/** Bounded only so that a full threadpool fails the test instead of hanging it. */
async function fsAnswers(): Promise<string> {
  const read = readFile(new URL('../../package.json', import.meta.url)).then(() => 'read');
  return Promise.race([read, new Promise<string>((r) => setTimeout(r, 10_000, 'threadpool full').unref())]);
}

beforeAll(async () => {
  hostLookup.lookup = async (host) => {
    if (host.endsWith('.dead-dns.example')) return silentNameServer(host);
    if (host === 'hooks.live-dns.example') {
      liveLookups += 1;
      return lookup('localhost', { all: true });
    }
    return system(host);
  };
  svc = await startService({ env: { ALLOW_PRIVATE_DESTINATIONS: 'false', DNS_LOOKUP_CONCURRENCY: String(CAP) } });
  for (const p of [...PARTNERS, 'capok']) await createPartner(svc, p);
});
afterEach(async () => {
  for (const host of [...blocked]) await giveUp(host);
  maxBlocked = 0;
});
afterAll(async () => {
  for (const host of [...blocked]) await giveUp(host);
  await svc?.close();
  hostLookup.lookup = system;
  rmSync(dir, { recursive: true, force: true });
});

test("four partners' dead names at once hold at most DNS_LOOKUP_CONCURRENCY threads: fs answers, a live name resolves once a slot frees", async () => {
  // One endpoint per partner, each on its own dead name: one lookup per partner was allowed, so 4.
  const answers = await Promise.all(
    PARTNERS.map((p, i) => svc.api(`/v1/partners/${p}/endpoints`, { json: { url: `https://h${i}.dead-dns.example/h`, events: ['attribution.order_attributed'] } })),
  );
  expect(answers.map((r) => r.status)).toEqual([503, 503, 503, 503]); // two timed out in the lookup, two waiting for a slot
  expect(maxBlocked).toBe(CAP);
  expect(blocked.size).toBe(CAP); // the abandoned lookups still hold their threads ...
  await expect(fsAnswers()).resolves.toBe('read'); // ... and fs still has threads

  // A live name waits its turn while the cap is taken, and is looked up as soon as a slot frees:
  // its (loopback) answer is refused, so nothing is sent anywhere.
  const live = svc.api('/v1/partners/capok/endpoints', { json: { url: 'https://hooks.live-dns.example/h', events: ['attribution.order_attributed'] } });
  await new Promise((r) => setTimeout(r, 300));
  expect(liveLookups).toBe(0);
  await giveUp([...blocked][0]!);
  const r = await live;
  expect(r.status).toBe(400);
  expect(await r.text()).toMatch(/hooks\.live-dns\.example resolves to a private, loopback or link-local address/);
  expect(liveLookups).toBe(1);
}, 60_000);

test('the destination guard (platform clients, relay, HLS proxy) resolves through the capped lookup: dead names hold at most DNS_LOOKUP_CONCURRENCY threads', async () => {
  const guard = destinationGuard({ allowPrivate: false });
  const codes: (string | undefined)[] = [];
  const settled = (p: Promise<unknown>): Promise<void> => p.then(() => void codes.push('answered'), (err: NodeJS.ErrnoException) => void codes.push(err.code));
  const resolves = ['g0', 'g1', 'g2'].map((g) => settled(guard.resolve(`${g}.dead-dns.example`)));
  const request = settled(
    new Promise((resolve, reject) => {
      http.get({ host: 'g3.dead-dns.example', port: 80, path: '/', agent: guard.httpAgent }, resolve).on('error', reject);
    }),
  );
  await waitFor(async () => blocked.size === CAP);
  await expect(fsAnswers()).resolves.toBe('read');
  // The two over the cap count as timeouts after their 5 s, never having taken a thread.
  await waitFor(async () => codes.length === 2, 20_000);
  expect(codes).toEqual(['ETIMEOUT', 'ETIMEOUT']);
  expect(maxBlocked).toBe(CAP);
  for (const host of [...blocked]) await giveUp(host);
  await Promise.all([...resolves, request]);
  expect(codes.slice(2)).toEqual(['EAI_AGAIN', 'EAI_AGAIN']);
  guard.httpAgent?.destroy();
}, 60_000);

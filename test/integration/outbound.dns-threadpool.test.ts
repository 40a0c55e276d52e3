/**
 * A partner whose name servers drop queries cannot take libuv's threadpool. A system DNS lookup
 * (getaddrinfo) cannot be cancelled: an attempt's deadline abandons it, but it keeps one of the 4
 * threadpool threads until the resolver gives up. Every attempt started its own lookup, so a partner
 * with a few deliveries to a dead name held all 4 threads, and every other partner's lookup (and fs,
 * crypto) queued behind them: their attempts timed out too. Lookups are now shared per host name and
 * at most one per partner is in flight (sharedLookup, src/lib/ssrf.ts).
 *
 * The system resolver is swapped (hostLookup): a dead name blocks a real threadpool thread (opening a
 * FIFO nobody writes to, as getaddrinfo blocks on a silent name server) until the end of the test; the
 * other partner's name is looked up for real (localhost, through the threadpool) and its loopback
 * answer is refused, so nothing is sent anywhere.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, rmSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { lookup } from 'node:dns/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hostLookup } from '../../src/lib/ssrf.js';
import { createPartner, startService, waitFor, type TestService } from '../helpers/service.js';

let svc: TestService;
const system = hostLookup.lookup;
const dir = mkdtempSync(join(tmpdir(), 'dns-threadpool-'));
const fifo = join(dir, 'silent-name-server');
let dead = false;
let deadInFlight = 0;
let maxDeadInFlight = 0;

/** A lookup of a dead name: a threadpool thread blocked until the FIFO gets a writer (the resolver gives up). */
async function silentNameServer(host: string): Promise<never> {
  deadInFlight += 1;
  maxDeadInFlight = Math.max(maxDeadInFlight, deadInFlight);
  try {
    await (await open(fifo, 'r')).close();
  } finally {
    deadInFlight -= 1;
  }
  throw Object.assign(new Error(`getaddrinfo EAI_AGAIN ${host}`), { code: 'EAI_AGAIN' });
}

beforeAll(async () => {
  execFileSync('mkfifo', [fifo]);
  hostLookup.lookup = async (host) => {
    if (host.endsWith('.dead-dns.example')) return dead ? silentNameServer(host) : [{ address: '93.184.215.14' }];
    if (host === 'hooks.ok-dns.example') return dead ? lookup('localhost', { all: true }) : [{ address: '93.184.215.14' }];
    return system(host);
  };
  svc = await startService({ workers: true, env: { ALLOW_PRIVATE_DESTINATIONS: 'false', OUTBOUND_TIMEOUT_MS: '1000', OUTBOUND_RETRY_SCHEDULE_MS: '600000' } });
  await createPartner(svc, 'deaddns');
  await createPartner(svc, 'okdns');
  await createPartner(svc, 'apidns');
});
afterAll(async () => {
  // The resolver gives up: wake every blocked lookup (a writer opening the FIFO), also those queued
  // behind them; a lookup started from now on answers at once.
  dead = false;
  for (let i = 0; i < 200 && deadInFlight > 0; i++) {
    try {
      closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
    } catch {
      // ENXIO: no lookup is blocked on it right now
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  await svc?.close();
  hostLookup.lookup = system;
  rmSync(dir, { recursive: true, force: true });
});

async function endpoint(partner: string, url: string): Promise<void> {
  const r = await svc.api(`/v1/partners/${partner}/endpoints`, { json: { url, events: ['attribution.order_attributed'] } });
  expect(r.status).toBe(201);
}

async function firstAttempt(partner: string, messageId: string): Promise<{ lastError: string | null }[]> {
  return waitFor(async () => {
    const ds = (await svc.rt.outbound.message(partner, messageId))?.deliveries ?? [];
    return ds.length > 0 && ds.every((d) => d.attempts === 1) ? ds : undefined;
  }, 20_000);
}

test("a partner's dead DNS holds one threadpool thread: another partner's lookups and fs still answer promptly", async () => {
  await endpoint('deaddns', 'https://a.dead-dns.example/h');
  await endpoint('deaddns', 'https://b.dead-dns.example/h');
  await endpoint('okdns', 'https://hooks.ok-dns.example/h');
  dead = true;

  // Six attempts of the dead partner's (3 messages × 2 endpoints), each abandoned at its deadline.
  const messages: string[] = [];
  for (const k of ['k1', 'k2', 'k3']) {
    const { messageId } = await svc.rt.outbound.emit('deaddns', 'attribution.order_attributed', { orderId: k }, k);
    if (!messageId) throw new Error('no message stored');
    messages.push(messageId);
  }
  for (const m of messages) for (const d of await firstAttempt('deaddns', m)) expect(d.lastError).toMatch(/timed out|could not be looked up now/);
  expect(maxDeadInFlight).toBe(1);

  // The threadpool still serves fs ...
  const fsRead = readFile(new URL('../../package.json', import.meta.url));
  await expect(Promise.race([fsRead.then(() => 'read'), new Promise((r) => setTimeout(r, 2_000, 'threadpool busy').unref())])).resolves.toBe('read');
  // ... and the other partner's lookup, whose (loopback) answer its attempt refuses before sending.
  const { messageId } = await svc.rt.outbound.emit('okdns', 'attribution.order_attributed', { orderId: 'o1' }, 'o1');
  if (!messageId) throw new Error('no message stored');
  const [ok] = await firstAttempt('okdns', messageId);
  expect(ok?.lastError).toMatch(/^destination refused: hooks\.ok-dns\.example resolves to a private, loopback or link-local address/);
}, 90_000);

test("the API's destination checks: one partner registering many dead names holds one threadpool thread", async () => {
  // The routes checked without an owner, so each distinct name was its own owner: three dead names
  // registered at once held three more threads (with the delivery's above, the whole threadpool).
  dead = true;
  const before = deadInFlight;
  maxDeadInFlight = deadInFlight;
  const answers = await Promise.all([
    svc.api('/v1/partners/apidns/endpoints', { json: { url: 'https://c.dead-dns.example/h', events: ['attribution.order_attributed'] } }),
    svc.api('/v1/partners/apidns/endpoints', { json: { url: 'https://d.dead-dns.example/h', events: ['attribution.order_attributed'] } }),
    svc.api('/v1/partners/apidns/targets?verify=false', { json: { platform: 'whatnot', name: 'w', credentials: { accessToken: 'wn_x' }, baseUrl: 'https://e.dead-dns.example/v1', commissionRateBps: 100 } }),
  ]);
  expect(answers.map((r) => r.status)).toEqual([503, 503, 503]);
  expect(maxDeadInFlight).toBeLessThanOrEqual(before + 1);
}, 60_000);

/**
 * A URL an operator gives (outbound endpoint url, target baseUrl) whose name DNS cannot look up right
 * now (EAI_AGAIN: resolver unreachable or timed out; EAI_FAIL: SERVFAIL) is a 503 with Retry-After, and
 * nothing is saved: the URL may be fine, the dependency is down. It was a 400 "does not resolve"
 * (assertPublicDestination swallowed every lookup error), which tells the operator to fix a good URL
 * (found against npm start, 2026-12-02). A name that does not exist (ENOTFOUND) stays a 400, and a name
 * with a public address is saved. The system resolver is swapped for one that answers as told
 * (hostLookup, src/lib/ssrf.ts); private destinations are not allowed here, as in production.
 */
import { hostLookup } from '../../src/lib/ssrf.js';
import { createPartner, startService, type TestService } from '../helpers/service.js';

let svc: TestService;
const system = hostLookup.lookup;
const answers = new Map<string, string | { address: string }[]>();
/** Lookups left hanging ('hang'): failed at the end, so that nothing waits for them. */
const hanging: ((err: Error) => void)[] = [];

beforeAll(async () => {
  hostLookup.lookup = (host) => {
    const a = answers.get(host);
    if (a === undefined) return system(host);
    if (a === 'hang') return new Promise((_, reject) => hanging.push(reject));
    if (typeof a === 'string') return Promise.reject(Object.assign(new Error(`getaddrinfo ${a} ${host}`), { code: a }));
    return Promise.resolve(a);
  };
  svc = await startService({ env: { ALLOW_PRIVATE_DESTINATIONS: 'false' } });
  await createPartner(svc, 'dns');
});
afterAll(async () => {
  hostLookup.lookup = system;
  for (const reject of hanging) reject(Object.assign(new Error('getaddrinfo EAI_AGAIN'), { code: 'EAI_AGAIN' }));
  await svc?.close();
});

interface Problem {
  status: number;
  detail: string;
  errors?: { path: string }[];
}

async function problem(r: Response, status: number): Promise<Problem> {
  expect(r.status).toBe(status);
  expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  return (await r.json()) as Problem;
}

const endpoint = (host: string): Promise<Response> => svc.api('/v1/partners/dns/endpoints', { json: { url: `https://${host}/hooks`, events: ['mirror.updated'] } });
const target = (host: string): Promise<Response> =>
  svc.api('/v1/partners/dns/targets?verify=false', { json: { platform: 'whatnot', name: 'w', credentials: { accessToken: 'wn_x' }, baseUrl: `https://${host}/v1`, commissionRateBps: 100 } });

test.each(['EAI_AGAIN', 'EAI_FAIL', 'ETIMEOUT'])('DNS failing with %s: 503 with Retry-After for an endpoint url and a target baseUrl, nothing saved', async (code) => {
  const host = `hooks-${code.toLowerCase()}.partner.example`;
  answers.set(host, code);
  for (const send of [endpoint, target]) {
    const r = await send(host);
    const p = await problem(r, 503);
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(p.detail).toContain(host);
  }
  const [eps, tgts] = await Promise.all([svc.api('/v1/partners/dns/endpoints'), svc.api('/v1/partners/dns/targets')]);
  expect(((await eps.json()) as { endpoints: unknown[] }).endpoints).toEqual([]);
  expect(((await tgts.json()) as { targets: unknown[] }).targets).toEqual([]);
});

test('a name that does not exist is still a 400 naming the field; one with a public address is saved', async () => {
  answers.set('gone.partner.example', 'ENOTFOUND');
  expect((await problem(await endpoint('gone.partner.example'), 400)).errors?.map((e) => e.path)).toEqual(['body.url']);
  expect((await problem(await target('gone.partner.example'), 400)).errors?.map((e) => e.path)).toEqual(['body.baseUrl']);
  answers.set('ok.partner.example', [{ address: '93.184.215.14' }]);
  expect((await endpoint('ok.partner.example')).status).toBe(201);
  answers.set('private.partner.example', [{ address: '10.1.2.3' }]);
  expect((await problem(await endpoint('private.partner.example'), 400)).detail).toMatch(/private, loopback or link-local/);
});

test('DNS that does not answer at all: the same 503 once the lookup deadline passed, not a request left hanging; nothing saved', async () => {
  const host = 'hooks-silent.partner.example';
  answers.set(host, 'hang');
  for (const send of [endpoint, target]) {
    // Well past the lookup deadline (DESTINATION_LOOKUP_TIMEOUT_MS, 5 s): a request still unanswered then hangs.
    const r = await Promise.race([send(host), new Promise<'hanging'>((resolve) => setTimeout(() => resolve('hanging'), 15_000))]);
    expect(r).not.toBe('hanging');
    if (r === 'hanging') return;
    const p = await problem(r, 503);
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(p.detail).toContain(host);
  }
  const [eps, tgts] = await Promise.all([svc.api('/v1/partners/dns/endpoints'), svc.api('/v1/partners/dns/targets')]);
  expect(((await eps.json()) as { endpoints: { url: string }[] }).endpoints.filter((e) => e.url.includes(host))).toEqual([]);
  expect(((await tgts.json()) as { targets: { baseUrl?: string }[] }).targets.filter((t) => t.baseUrl?.includes(host))).toEqual([]);
}, 60_000);

/**
 * Inbound partner events, input edge (the external contract §3): every bad input gets the right 4xx as
 * problem+json (with field errors for validation) and leaves nothing behind in Redis; order events
 * are accepted and deduplicated. Real redis-server, real HTTP.
 */
import { connect } from 'node:net';
import fc from 'fast-check';
import { PartnerEventSchema } from '../../src/domain/events.js';
import { signatureHeader } from '../../src/sources/signature.js';
import { keysMatching } from '../helpers/redis-cluster.js';
import { createPartner, sampleShow, sendEvent, showEvent, servicePerFile, startService, type TestService } from '../helpers/service.js';

let svc: TestService;
let secret: string;
const PARTNER = 'inp';
let seq = 0;

servicePerFile(PARTNER, (started) => ({ svc, secret } = started));

interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  errors?: { path: string; message: string }[];
}

/** Every show-slot and order-slot key of this service (inbox, event log, desired state, mirrors). */
async function storedKeys(): Promise<string[]> {
  const p = svc.config.keyPrefix;
  const [shows, orders] = await Promise.all([keysMatching(svc.rt.redis, `${p}:{s:*`), keysMatching(svc.rt.redis, `${p}:{o:*`)]);
  return [...shows, ...orders].sort();
}

async function expectProblem(r: Response, status: number): Promise<Problem> {
  expect(r.status).toBe(status);
  expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const p = (await r.json()) as Problem;
  expect(p.status).toBe(status);
  expect(typeof p.title).toBe('string');
  expect(typeof p.type).toBe('string');
  return p;
}

/** Sends a signed event and checks that it was refused with `status` and stored nothing. */
async function refused(status: number, event: unknown, opts: { body?: string } = {}): Promise<Problem> {
  const before = await storedKeys();
  const r = await sendEvent(svc, PARTNER, secret, event, { webhookId: `msg_inp_${++seq}`, ...opts });
  const p = await expectProblem(r, status);
  expect(await storedKeys()).toEqual(before);
  return p;
}

const paths = (p: Problem): string[] => (p.errors ?? []).map((e) => e.path);

describe('refused inputs store nothing', () => {
  test('malformed JSON, signed correctly → 400', async () => {
    const p = await refused(400, undefined, { body: '{"type":"show.scheduled","occurredAt":' });
    expect(p.detail).toMatch(/JSON/);
  });

  test('a JSON body that is not an object → 400', async () => {
    await refused(400, undefined, { body: '[1,2,3]' });
    await refused(400, undefined, { body: 'null' });
  });

  test('wrong types → 400 with errors[].path naming each field', async () => {
    const show = sampleShow('wt1', {
      title: 42,
      scheduledAt: 'tomorrow',
      products: [{ id: 'p1', title: 'Lip Oil', price: { amount: 12.5, currency: 'USD' }, url: 'https://shop.example.com/p1' }],
    });
    const p = await refused(400, showEvent('show.scheduled', show, '2026-11-24T17:00:00Z'));
    expect(p.errors?.length).toBeGreaterThanOrEqual(3);
    for (const e of p.errors ?? []) expect(typeof e.message).toBe('string');
    expect(paths(p)).toEqual(expect.arrayContaining(['data.show.title', 'data.show.scheduledAt', 'data.show.products.0.price.amount']));
    expect(await svc.rt.redis.exists(svc.rt.keys.desired(PARTNER, 'wt1'))).toBe(0);
  });

  test('a bad occurredAt, a bad id and a non-http product url → 400', async () => {
    // Named once, for what is wrong (not also "before 1970" for a text that is no time at all).
    const p1 = await refused(400, showEvent('show.scheduled', sampleShow('wt2'), 'last tuesday'));
    expect(p1.errors).toEqual([{ path: 'occurredAt', message: 'ISO-8601 timestamp expected' }]);
    const pd = await refused(400, showEvent('show.scheduled', sampleShow('wt2'), '1960-01-01'));
    expect(pd.errors).toEqual([{ path: 'occurredAt', message: 'ISO-8601 timestamp expected' }]);
    // Before 1970: its order key would compare by the Redis server's locale (see events.ts OccurredAt).
    const p0 = await refused(400, showEvent('show.scheduled', sampleShow('wt0'), '1969-12-31T23:59:59.999Z'));
    expect(p0.errors).toEqual([{ path: 'occurredAt', message: 'occurredAt before 1970-01-01T00:00:00Z is not accepted' }]);
    const p2 = await refused(400, showEvent('show.scheduled', sampleShow('has space'), '2026-11-24T17:00:00Z'));
    expect(paths(p2)).toContain('data.show.id');
    const p3 = await refused(
      400,
      showEvent('show.scheduled', sampleShow('wt3', { products: [{ id: 'p1', title: 'x', price: { amount: 1, currency: 'USD' }, url: 'javascript:alert(1)' }] }), '2026-11-24T17:00:00Z'),
    );
    expect(paths(p3)).toContain('data.show.products.0.url');
  });

  test('EVENT_FUTURE_SLACK_SEC sets the slack: with 60 s an event an hour ahead is refused', async () => {
    const strict = await startService({ redis: svc.redis, env: { EVENT_FUTURE_SLACK_SEC: '60' } });
    try {
      const strictSecret = await createPartner(strict, 'inp-strict');
      const ahead = new Date(Date.now() + 3_600_000).toISOString();
      const r = await sendEvent(strict, 'inp-strict', strictSecret, showEvent('show.scheduled', sampleShow('fut3'), ahead), { webhookId: `msg_inp_${++seq}` });
      expect(paths(await expectProblem(r, 400))).toEqual(['occurredAt']);
    } finally {
      await strict.close();
    }
  });

  test('an occurredAt more than 24 h in the future → 400 naming occurredAt (it would win against every later event: the show froze)', async () => {
    const p = await refused(400, showEvent('show.scheduled', sampleShow('fut1'), '9999-12-31T23:59:59Z'));
    expect(paths(p)).toEqual(['occurredAt']);
    // Just past the 24 h (not only far past it).
    const pastSlack = new Date(Date.now() + 86_400_000 + 60_000).toISOString();
    expect(paths(await refused(400, showEvent('show.scheduled', sampleShow('fut1'), pastSlack)))).toEqual(['occurredAt']);
    const justPast = new Date(Date.now() + 366 * 86_400_000 + 60_000).toISOString();
    expect(paths(await refused(400, { type: 'product.pinned', occurredAt: justPast, data: { showId: 'fut1', productId: 'p1' } }))).toEqual(['occurredAt']);
    // Within the slack (a partner clock a little ahead) it is an event like any other.
    const ahead = new Date(Date.now() + 3_600_000).toISOString();
    expect((await sendEvent(svc, PARTNER, secret, showEvent('show.scheduled', sampleShow('fut2'), ahead), { webhookId: `msg_inp_${++seq}` })).status).toBe(202);
  });

  test('a webhook-id of 1-256 printable ASCII characters: 256 is taken, 257 → 400, nothing stored', async () => {
    expect((await sendEvent(svc, PARTNER, secret, showEvent('show.scheduled', sampleShow('wid1'), new Date().toISOString()), { webhookId: 'w'.repeat(256) })).status).toBe(202);
    const before = await storedKeys();
    await expectProblem(await sendEvent(svc, PARTNER, secret, showEvent('show.scheduled', sampleShow('wid2'), new Date().toISOString()), { webhookId: 'v'.repeat(257) }), 400);
    expect(await storedKeys()).toEqual(before);
  });

  test('a webhook-id with a space → 400 whose detail says the rule (0x21-0x7E: printable ASCII other than a space), nothing stored', async () => {
    const before = await storedKeys();
    const p = await expectProblem(await sendEvent(svc, PARTNER, secret, showEvent('show.scheduled', sampleShow('wid3'), new Date().toISOString()), { webhookId: 'msg inp space' }), 400);
    expect(p.detail).toBe('webhook-id must be 1-256 printable ASCII characters other than a space (0x21-0x7E)');
    expect(await storedKeys()).toEqual(before);
  });

  test('an order or refund createdAt more than 366 days in the future → 400 naming it (occurredAt now); days ahead (an attribution window) is accepted', async () => {
    const now = new Date().toISOString();
    const order = (id: string, createdAt: string) => ({ type: 'order.created', occurredAt: now, data: { order: { id, createdAt, lines: [], total: { amount: 1800, currency: 'USD' } } } });
    expect(paths(await refused(400, order('o-fut1', '9999-12-31T23:59:59Z')))).toEqual(['data.order.createdAt']);
    const justPast = new Date(Date.now() + 366 * 86_400_000 + 60_000).toISOString();
    expect(paths(await refused(400, order('o-fut2', justPast)))).toEqual(['data.order.createdAt']);
    const refund = { type: 'order.refunded', occurredAt: now, data: { refund: { id: 'r-fut1', orderId: 'o-fut3', createdAt: '9999-01-01T00:00:00Z', amount: { amount: 100, currency: 'USD' } } } };
    expect(paths(await refused(400, refund))).toEqual(['data.refund.createdAt']);
    const ahead = new Date(Date.now() + 200 * 3_600_000).toISOString();
    expect((await sendEvent(svc, PARTNER, secret, order('o-fut3', ahead), { webhookId: `msg_inp_${++seq}` })).status).toBe(202);
  });

  test("an order or refund createdAt before 1970 (an unset time: Go's zero 0001-01-01T00:00:00Z) → 400 naming it, nothing stored; the partner's corrected resend is then the order", async () => {
    const now = new Date().toISOString();
    const order = (id: string, createdAt: string) => ({ type: 'order.created', occurredAt: now, data: { order: { id, createdAt, lines: [], total: { amount: 1800, currency: 'USD' } } } });
    expect(paths(await refused(400, order('o-zero1', '0001-01-01T00:00:00Z')))).toEqual(['data.order.createdAt']);
    expect(paths(await refused(400, order('o-zero1', '1969-12-31T23:59:59.999Z')))).toEqual(['data.order.createdAt']);
    const refund = { type: 'order.refunded', occurredAt: now, data: { refund: { id: 'r-zero1', orderId: 'o-zero1', createdAt: '0001-01-01T00:00:00Z', amount: { amount: 100, currency: 'USD' } } } };
    expect(paths(await refused(400, refund))).toEqual(['data.refund.createdAt']);
    // Nothing of the refused one is kept: the corrected order is stored (202, not a 200 duplicate).
    expect((await sendEvent(svc, PARTNER, secret, order('o-zero1', now), { webhookId: `msg_inp_${++seq}` })).status).toBe(202);
    expect((await sendEvent(svc, PARTNER, secret, order('o-epoch', '1970-01-01T00:00:00Z'), { webhookId: `msg_inp_${++seq}` })).status).toBe(202);
  });

  test('a negative product price → 400 naming the field, in a show snapshot and in product.updated; a price of 0 is a price', async () => {
    const product = (amount: number) => ({ id: 'p1', title: 'Lip Oil', price: { amount, currency: 'USD' }, url: 'https://shop.example.com/p1' });
    const p1 = await refused(400, showEvent('show.scheduled', sampleShow('neg1', { products: [product(-1)] }), '2026-11-24T17:00:00Z'));
    expect(paths(p1)).toEqual(['data.show.products.0.price.amount']);
    const p2 = await refused(400, { type: 'product.updated', occurredAt: '2026-11-24T17:00:00Z', data: { showId: 'neg1', product: product(-1800) } });
    expect(paths(p2)).toEqual(['data.product.price.amount']);
    expect((await sendEvent(svc, PARTNER, secret, showEvent('show.scheduled', sampleShow('neg2', { products: [product(0)] }), '2026-11-24T17:00:00Z'), { webhookId: `msg_inp_${++seq}` })).status).toBe(202);
  });

  test("a sku that is no id (empty, a space, '/', '?', an emoji, '.' or '..') is accepted (202), in a show snapshot and in product.updated; only one over 128 characters is a 400", async () => {
    // The contract (§3) gives Product.sku no format (only ids are [A-Za-z0-9_.:-]{1,128}): each of these
    // was a 400 from b912876 on. A platform that cannot take one as its product id fails that pin only
    // (test/e2e/pin-refused.test.ts).
    const product = (sku: string) => ({ id: 'p1', title: 'Lip Oil', price: { amount: 1800, currency: 'USD' }, url: 'https://shop.example.com/p1', sku });
    for (const [i, sku] of ['', ' ', 'LIP OIL 01', 'a/b', '?x=1', '#h', '%2F', '\u{1F389}', 'a\u0000b', '.', '..', 'LO-CH', 'x'.repeat(128), 'a.b:c_d', '...'].entries()) {
      expect((await sendEvent(svc, PARTNER, secret, showEvent('show.scheduled', sampleShow(`sku${i}`, { products: [product(sku)] }), '2026-11-24T17:00:00Z'), { webhookId: `msg_inp_${++seq}` })).status).toBe(202);
      expect((await sendEvent(svc, PARTNER, secret, { type: 'product.updated', occurredAt: '2026-11-24T17:00:01Z', data: { showId: `sku${i}`, product: product(sku) } }, { webhookId: `msg_inp_${++seq}` })).status).toBe(202);
    }
    const p1 = await refused(400, showEvent('show.scheduled', sampleShow('sku-long', { products: [product('x'.repeat(129))] }), '2026-11-24T17:00:00Z'));
    expect(paths(p1)).toEqual(['data.show.products.0.sku']);
    const p2 = await refused(400, { type: 'product.updated', occurredAt: '2026-11-24T17:00:00Z', data: { showId: 'sku-long', product: product('x'.repeat(129)) } });
    expect(paths(p2)).toEqual(['data.product.sku']);
  });

  test('an unknown event type → 400', async () => {
    const p = await refused(400, { type: 'show.exploded', occurredAt: '2026-11-24T17:00:00Z', data: { show: sampleShow('ut1') } });
    expect(paths(p)).toContain('type');
  });

  test('money as a float → 400 (order total and line amount)', async () => {
    const order = {
      id: 'o-float',
      createdAt: '2026-11-24T18:10:00Z',
      lines: [{ productId: 'p1', quantity: 1, amount: { amount: 18.0001, currency: 'USD' } }],
      total: { amount: 18.5, currency: 'USD' },
    };
    const p = await refused(400, { type: 'order.created', occurredAt: '2026-11-24T18:10:00Z', data: { order } });
    expect(paths(p)).toEqual(expect.arrayContaining(['data.order.total.amount', 'data.order.lines.0.amount.amount']));
    // A string amount and a lower-case currency are refused too.
    const p2 = await refused(400, { type: 'order.created', occurredAt: '2026-11-24T18:10:00Z', data: { order: { ...order, lines: [], total: { amount: '1800', currency: 'usd' } } } });
    expect(paths(p2)).toEqual(expect.arrayContaining(['data.order.total.amount', 'data.order.total.currency']));
  });

  test('a currency that is three capitals but not an active ISO 4217 code → 400 naming each field; JPY, KWD are accepted', async () => {
    const order = (currency: string, id: string) => ({
      id,
      createdAt: '2026-11-24T18:10:00Z',
      lines: [{ productId: 'p1', quantity: 1, amount: { amount: 1800, currency } }],
      total: { amount: 1800, currency },
    });
    for (const c of ['ZZZ', 'ABC', 'XTS', 'XXX', 'XAU']) {
      const p = await refused(400, { type: 'order.created', occurredAt: '2026-11-24T18:10:00Z', data: { order: order(c, `o-cur-${c}`) } });
      expect(paths(p)).toEqual(['data.order.lines.0.amount.currency', 'data.order.total.currency']);
      expect(p.errors![0]!.message).toMatch(/ISO 4217/);
    }
    const refund = await refused(400, { type: 'order.refunded', occurredAt: '2026-11-24T18:10:00Z', data: { refund: { id: 'r-zzz', orderId: 'o1', createdAt: '2026-11-24T18:10:00Z', amount: { amount: 100, currency: 'ZZZ' } } } });
    expect(paths(refund)).toEqual(['data.refund.amount.currency']);
    const price = await refused(400, showEvent('show.scheduled', sampleShow('cur1', { products: [{ id: 'p1', title: 'x', price: { amount: 1, currency: 'ABC' }, url: 'https://shop.example.com/p1' }] }), '2026-11-24T17:00:00Z'));
    expect(paths(price)).toEqual(['data.show.products.0.price.currency']);
    for (const c of ['JPY', 'KWD']) {
      const r = await sendEvent(svc, PARTNER, secret, { type: 'order.created', occurredAt: '2026-11-24T18:10:00Z', data: { order: order(c, `o-cur-${c}`) } }, { webhookId: `msg_inp_${++seq}` });
      expect(r.status).toBe(202);
    }
  });

  test('an order whose lines are in another currency than its total → 400 naming each such line; stored events like it still parse', async () => {
    const line = (amount: number, currency: string) => ({ productId: 'p1', quantity: 1, amount: { amount, currency } });
    const mixed = { id: 'o-mixed', createdAt: '2026-11-24T18:10:00Z', lines: [line(1000, 'USD'), line(800, 'EUR'), line(100, 'USD'), line(5, 'JPY')], total: { amount: 1800, currency: 'USD' } };
    const event = { type: 'order.created', occurredAt: '2026-11-24T18:10:00Z', data: { order: mixed } };
    const p = await refused(400, event);
    expect(p.errors).toEqual([
      { path: 'data.order.lines.1.amount.currency', message: expect.stringMatching(/EUR differs from the order total's USD/) },
      { path: 'data.order.lines.3.amount.currency', message: expect.stringMatching(/JPY differs from the order total's USD/) },
    ]);
    // A line in a made-up currency is named for that, once; a made-up total is named alone.
    const bad = await refused(400, { ...event, data: { order: { ...mixed, id: 'o-mixed2', lines: [line(1, 'ZZZ'), line(1, 'EUR')] } } });
    expect(bad.errors).toEqual([
      { path: 'data.order.lines.0.amount.currency', message: expect.stringMatching(/ISO 4217/) },
      { path: 'data.order.lines.1.amount.currency', message: expect.stringMatching(/differs/) },
    ]);
    const badTotal = await refused(400, { ...event, data: { order: { ...mixed, id: 'o-mixed3', lines: [line(1, 'EUR')], total: { amount: 1, currency: 'ZZZ' } } } });
    expect(badTotal.errors).toEqual([{ path: 'data.order.total.currency', message: expect.stringMatching(/ISO 4217/) }]);
    // Only the edge refuses it: an order like it stored before this rule is processed as it was.
    expect(PartnerEventSchema.safeParse(event).success).toBe(true);
    // The same order in one currency is accepted.
    const ok = await sendEvent(svc, PARTNER, secret, { ...event, data: { order: { ...mixed, lines: [line(1000, 'USD'), line(800, 'USD')] } } }, { webhookId: `msg_inp_${++seq}` });
    expect(ok.status).toBe(202);
  });

  test('a lone surrogate escape (\\uD800) in any text → 400 naming the field; an escaped surrogate pair is text', async () => {
    // JSON.stringify writes a lone surrogate as the escape `\ud800`: stored as such, it made every sync
    // of the show fail in Redis (Lua cjson refuses to decode the mirror record holding the title).
    const p1 = await refused(400, showEvent('show.scheduled', sampleShow('ls1', { title: 'Live \ud800 now' }), '2026-11-24T17:00:00Z'));
    expect(paths(p1)).toEqual(['data.show.title']);
    const products = [{ id: 'p1', title: 'Lip Oil', price: { amount: 1800, currency: 'USD' }, url: 'https://shop.example.com/p1', sku: 'a\udfffb' }];
    const p2 = await refused(400, showEvent('show.scheduled', sampleShow('ls2', { products }), '2026-11-24T17:00:00Z'));
    expect(paths(p2)).toEqual(['data.show.products.0.sku']);
    const p3 = await refused(400, { type: 'product.updated', occurredAt: '2026-11-24T17:00:00Z', data: { showId: 'ls3', product: { ...products[0], sku: 'ok', title: '\ud83d' } } });
    expect(paths(p3)).toEqual(['data.product.title']);
    // The same emoji as an escaped pair (what JSON.stringify of 😀 gives under some encoders) is well-formed.
    const body = JSON.stringify(showEvent('show.scheduled', sampleShow('ls4', { title: 'EMOJI' }), '2026-11-24T17:00:00Z')).replace('EMOJI', '\\ud83d\\ude00 live');
    const ok = await sendEvent(svc, PARTNER, secret, undefined, { webhookId: `msg_inp_${++seq}`, body });
    expect(ok.status).toBe(202);
  });

  test('a 2 MiB body → 413', async () => {
    const big = JSON.stringify(showEvent('show.scheduled', sampleShow('big1', { description: 'x'.repeat(2 * 1024 * 1024) }), '2026-11-24T17:00:00Z'));
    expect(Buffer.byteLength(big)).toBeGreaterThan(2 * 1024 * 1024);
    await refused(413, undefined, { body: big });
    expect(await svc.rt.redis.exists(svc.rt.keys.desired(PARTNER, 'big1'))).toBe(0);
  });

  test('missing webhook headers → 401', async () => {
    const before = await storedKeys();
    const raw = JSON.stringify(showEvent('show.scheduled', sampleShow('nohdr'), '2026-11-24T17:00:00Z'));
    const r = await fetch(`${svc.url}/v1/partners/${PARTNER}/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: raw });
    await expectProblem(r, 401);
    // Only the signature header missing.
    const id = 'msg_nosig';
    const r2 = await fetch(`${svc.url}/v1/partners/${PARTNER}/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'webhook-id': id, 'webhook-timestamp': String(Math.floor(Date.now() / 1000)) },
      body: raw,
    });
    await expectProblem(r2, 401);
    expect(await storedKeys()).toEqual(before);
  });

  test('an invalid body with a bad signature is 401, not 400 (no validation oracle for strangers)', async () => {
    const before = await storedKeys();
    const id = 'msg_badsig_badbody';
    const ts = Math.floor(Date.now() / 1000);
    const r = await fetch(`${svc.url}/v1/partners/${PARTNER}/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': signatureHeader('whsec_' + Buffer.alloc(24, 1).toString('base64'), id, ts, 'nope') },
      body: '{not json',
    });
    await expectProblem(r, 401);
    expect(await storedKeys()).toEqual(before);
  });

  test('the Content-Type does not decide: a signed event with any Content-Type, even one that does not parse, is read as bytes (202), never 415', async () => {
    // The route documents no 415 (it reads every media type raw); Fastify answered 415 itself for a
    // header it cannot parse, before the route ran, so such a partner's events were refused for good.
    for (const ct of ['text/plain', 'application/x-www-form-urlencoded', 'invalid', ';', 'undefined', 'application json']) {
      const raw = JSON.stringify(showEvent('show.scheduled', sampleShow(`ct${++seq}`), '2026-11-24T17:00:00Z'));
      const id = `msg_ct_${seq}`;
      const ts = Math.floor(Date.now() / 1000);
      const r = await fetch(`${svc.url}/v1/partners/${PARTNER}/events`, {
        method: 'POST',
        headers: { 'content-type': ct, 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': signatureHeader(secret, id, ts, raw) },
        body: raw,
      });
      expect({ ct, status: r.status }).toEqual({ ct, status: 202 });
    }
  });

  test('a valid event after all that is accepted: the refusals were about the input', async () => {
    const before = await storedKeys();
    const r = await sendEvent(svc, PARTNER, secret, showEvent('show.scheduled', sampleShow('ok1'), '2026-11-24T17:00:00Z'));
    expect(r.status).toBe(202);
    expect((await storedKeys()).length).toBeGreaterThan(before.length);
    expect(await svc.rt.redis.hget(svc.rt.keys.desired(PARTNER, 'ok1'), 'v')).toBe('1');
  });
});

/** Writes `request` on a new connection and resolves with all that came back once the server closed it. */
function rawExchange(request: string): Promise<string> {
  const { port } = new URL(svc.url);
  return new Promise<string>((resolve, reject) => {
    const sock = connect(Number(port), '127.0.0.1', () => sock.write(request));
    let got = '';
    sock.on('data', (d: Buffer) => (got += d.toString('utf8')));
    sock.on('close', () => resolve(got));
    sock.on('error', reject);
  });
}

describe('requests the HTTP parser refuses are problems too', () => {
  test('headers over 16 KiB → 431 problem+json', async () => {
    const r = await fetch(`${svc.url}/v1/partners/${PARTNER}/events`, { method: 'POST', headers: { 'content-type': 'application/json', 'webhook-id': 'x'.repeat(20_000) }, body: '{}' });
    expect((await expectProblem(r, 431)).title).toBe('Request Header Fields Too Large');
    expect(r.headers.get('x-request-id')).toMatch(/^\S+$/);
  });

  test('bytes that are not HTTP → 400 problem+json, and the connection is closed', async () => {
    const [head, body] = (await rawExchange('POST /v1/partners/x/events HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n')).split('\r\n\r\n') as [string, string];
    expect(head).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(head.toLowerCase()).toContain('content-type: application/problem+json');
    expect(JSON.parse(body)).toMatchObject({ status: 400, title: 'Bad Request', detail: 'not a valid HTTP request' });
  });

  // Found probing `npm start` (2026-12-02): Node answered a Host-less HTTP/1.1 request with a bare 400
  // (empty chunked body, no request id), and closed a CONNECT's connection without any answer.
  test('an HTTP/1.1 request without Host → 400 problem+json with a request id, and the connection is closed', async () => {
    const [head, body] = (await rawExchange('GET /health/live HTTP/1.1\r\n\r\n')).split('\r\n\r\n') as [string, string];
    expect(head).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(head.toLowerCase()).toContain('content-type: application/problem+json');
    expect(head.toLowerCase()).toMatch(/\r\nx-request-id: \S+/);
    expect(JSON.parse(body)).toMatchObject({ status: 400, title: 'Bad Request', detail: 'an HTTP/1.1 request must carry a Host header' });
    // HTTP/1.0 has no Host requirement: still answered.
    expect(await rawExchange('GET /health/live HTTP/1.0\r\n\r\n')).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
  });

  test('CONNECT → 405 problem+json with an empty Allow (no method applies to a tunnel target), and the connection is closed', async () => {
    const [head, body] = (await rawExchange('CONNECT 127.0.0.1:6379 HTTP/1.1\r\nHost: 127.0.0.1:6379\r\n\r\n')).split('\r\n\r\n') as [string, string];
    expect(head).toMatch(/^HTTP\/1\.1 405 Method Not Allowed\r\n/);
    expect(head.toLowerCase()).toContain('content-type: application/problem+json');
    expect(head.toLowerCase()).toMatch(/\r\nallow: \r\n/);
    expect(head.toLowerCase()).toMatch(/\r\nx-request-id: \S+/);
    expect(JSON.parse(body)).toMatchObject({ status: 405, title: 'Method Not Allowed' });
  });

  // Found probing `npm start` (2026-12-04): Node answered an expectation other than 100-continue with a
  // bare 417 of its own (an empty chunked body, no request id), never reaching the API. (Raw bytes:
  // fetch refuses to send an Expect header.)
  test('an Expect other than 100-continue → 417 problem+json with a request id, and the signed event is not stored; 100-continue still works', async () => {
    const before = await storedKeys();
    const body = JSON.stringify(showEvent('show.scheduled', sampleShow('expect1'), '2026-11-24T17:00:00Z'));
    const ts = Math.floor(Date.now() / 1000);
    const signed = (expect: string, id: string): string =>
      `POST /v1/partners/${PARTNER}/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: ${expect}\r\nConnection: close\r\n` +
      `webhook-id: ${id}\r\nwebhook-timestamp: ${ts}\r\nwebhook-signature: ${signatureHeader(secret, id, ts, body)}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    const [head, problemBody] = (await rawExchange(signed('200-ok', 'msg_expect_1'))).split('\r\n\r\n') as [string, string];
    expect(head).toMatch(/^HTTP\/1\.1 417 Expectation Failed\r\n/);
    expect(head.toLowerCase()).toContain('content-type: application/problem+json');
    expect(head.toLowerCase()).toMatch(/\r\nx-request-id: \S+/);
    expect(JSON.parse(problemBody)).toMatchObject({ status: 417, title: 'Expectation Failed' });
    expect(await storedKeys()).toEqual(before);
    // The one expectation there is: the interim 100, then the event is taken.
    const taken = await rawExchange(signed('100-continue', 'msg_expect_2'));
    expect(taken).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 202 Accepted\r\n/);
  });

  test('URLs the router refuses before any route runs → problem+json with a request id (400 bad escape, 414 long segment)', async () => {
    for (const [path, status] of [
      [`/v1/partners/%E0%A4%A/events`, 400],
      [`/v1/partners/${'p'.repeat(300)}/events`, 414],
      [`/ops/${'x'.repeat(300)}`, 414],
    ] as const) {
      const r = await fetch(`${svc.url}${path}`, { method: path.startsWith('/ops') ? 'GET' : 'POST', headers: { 'content-type': 'application/json' }, ...(path.startsWith('/ops') ? {} : { body: '{}' }) });
      expect(await expectProblem(r, status)).toMatchObject({ status, title: status === 414 ? 'URI Too Long' : 'Bad Request' });
      expect(r.headers.get('x-request-id')).toMatch(/^\S+$/);
    }
  });
});

describe('order events', () => {
  const order = {
    id: 'ord-1',
    clickId: 'clk_whatever',
    showId: 'ok1',
    createdAt: '2026-11-24T18:10:00Z',
    lines: [{ productId: 'p1', quantity: 2, amount: { amount: 3600, currency: 'USD' } }],
    total: { amount: 3600, currency: 'USD' },
  };
  const refund = { id: 'ref-1', orderId: 'ord-1', createdAt: '2026-11-25T09:00:00Z', amount: { amount: 1800, currency: 'USD' } };

  test('order.created and order.refunded are accepted (202) and their duplicates are 200', async () => {
    const eventsKey = svc.rt.keys.orderEvents(PARTNER, 'ord-1');
    const created = { type: 'order.created', occurredAt: '2026-11-24T18:10:00Z', data: { order } };
    const r1 = await sendEvent(svc, PARTNER, secret, created, { webhookId: 'msg_ord_1' });
    expect(r1.status).toBe(202);
    const j1 = (await r1.json()) as { eventId: string; duplicate: boolean };
    expect(j1.duplicate).toBe(false);
    expect(await svc.rt.redis.xlen(eventsKey)).toBe(1);

    const d1 = await sendEvent(svc, PARTNER, secret, created, { webhookId: 'msg_ord_1' });
    expect(d1.status).toBe(200);
    expect(await d1.json()).toEqual({ eventId: j1.eventId, webhookId: 'msg_ord_1', duplicate: true });
    expect(await svc.rt.redis.xlen(eventsKey)).toBe(1);

    const refunded = { type: 'order.refunded', occurredAt: '2026-11-25T09:00:00Z', data: { refund } };
    const r2 = await sendEvent(svc, PARTNER, secret, refunded, { webhookId: 'msg_ref_1' });
    expect(r2.status).toBe(202);
    const j2 = (await r2.json()) as { eventId: string; duplicate: boolean };
    expect(j2).toMatchObject({ duplicate: false });
    expect(j2.eventId).not.toBe(j1.eventId);
    expect(await svc.rt.redis.xlen(eventsKey)).toBe(2);

    const d2 = await sendEvent(svc, PARTNER, secret, refunded, { webhookId: 'msg_ref_1' });
    expect(d2.status).toBe(200);
    expect(await d2.json()).toEqual({ eventId: j2.eventId, webhookId: 'msg_ref_1', duplicate: true });
    expect(await svc.rt.redis.xlen(eventsKey)).toBe(2);

    // The stored record is the validated event.
    const entries = await svc.rt.redis.xrange(eventsKey, '-', '+');
    const stored = entries.map(([, fields]) => JSON.parse(fields[fields.indexOf('event') + 1]!) as { type: string });
    expect(stored.map((e) => e.type)).toEqual(['order.created', 'order.refunded']);
  });

  test('a refund that arrives before its order is accepted too', async () => {
    const early = { type: 'order.refunded', occurredAt: '2026-11-25T09:00:00Z', data: { refund: { ...refund, id: 'ref-2', orderId: 'ord-2' } } };
    expect((await sendEvent(svc, PARTNER, secret, early, { webhookId: 'msg_ref_2' })).status).toBe(202);
  });

  test('invalid order events are 400 and store nothing', async () => {
    const p1 = await refused(400, { type: 'order.created', occurredAt: '2026-11-24T18:10:00Z', data: { order: { ...order, id: 'ord-neg', total: { amount: -1, currency: 'USD' } } } });
    expect(paths(p1).some((x) => x.startsWith('data.order.total'))).toBe(true);
    const p2 = await refused(400, { type: 'order.refunded', occurredAt: '2026-11-24T18:10:00Z', data: { refund: { ...refund, id: 'ref-0', amount: { amount: 0, currency: 'USD' } } } });
    expect(paths(p2).some((x) => x.startsWith('data.refund.amount'))).toBe(true);
    const p3 = await refused(400, { type: 'order.created', occurredAt: '2026-11-24T18:10:00Z', data: { order: { ...order, id: 'ord-q', lines: [{ productId: 'p1', quantity: 0.5, amount: { amount: 1, currency: 'USD' } }] } } });
    expect(paths(p3)).toContain('data.order.lines.0.quantity');
  });
});

describe('an optional field given as null is read as absent (contract note: partner serializers write null for a value they lack)', () => {
  const product = (id: string, extra: Record<string, unknown> = {}) => ({ id, title: 'Lip Oil', price: { amount: 1800, currency: 'USD' }, url: 'https://shop.example.com/p1', ...extra });
  const accepted = async (event: unknown): Promise<void> => {
    expect((await sendEvent(svc, PARTNER, secret, event, { webhookId: `msg_inp_${++seq}` })).status).toBe(202);
  };
  /** A show's desired-state registers (what the mirror worker reads), the show's id (also in its title) written as `S`. */
  const registers = async (showId: string): Promise<Record<string, string>> => {
    const all = await svc.rt.redis.hgetall(svc.rt.keys.desired(PARTNER, showId));
    return Object.fromEntries(Object.entries(all).filter(([f]) => /^(snap|prod:[^@]+)$/.test(f)).map(([f, v]) => [f, v.replaceAll(showId, 'S')]));
  };

  test('a show snapshot with description/sourceUrl null and products with imageUrl/sku null → 202, stored and shown as the one that omits them; a later null is no change', async () => {
    const nulls = { description: null, sourceUrl: null, products: [product('p1', { imageUrl: null, sku: null })] };
    await accepted(showEvent('show.scheduled', sampleShow('nul1', nulls), '2026-11-24T17:00:00Z'));
    await accepted(showEvent('show.scheduled', sampleShow('nul2', { products: [product('p1')] }), '2026-11-24T17:00:00Z'));
    await accepted({ type: 'product.updated', occurredAt: '2026-11-24T17:00:01Z', data: { showId: 'nul1', product: product('p2', { imageUrl: null, sku: null }) } });
    await accepted({ type: 'product.updated', occurredAt: '2026-11-24T17:00:01Z', data: { showId: 'nul2', product: product('p2') } });
    const [r1, r2] = await Promise.all([registers('nul1'), registers('nul2')]);
    expect(Object.keys(r1).sort()).toEqual(['prod:p2', 'snap']); // (and their order keys, 'v')
    expect(r1).toEqual(r2);
    expect(r1['snap']).not.toContain('null');
    const view = async (id: string): Promise<unknown> => {
      const { show } = (await (await svc.api(`/v1/partners/${PARTNER}/shows/${id}`)).json()) as { show: Record<string, unknown> };
      const { ingest: _ingest, ...rest } = show; // (each show's own stream key)
      return JSON.parse(JSON.stringify(rest).replaceAll(id, 'S')) as unknown;
    };
    expect(await view('nul1')).toEqual(await view('nul2'));
    // The same snapshot again with null where the stored one omitted them: the register's value is unchanged.
    const before = await svc.rt.redis.hget(svc.rt.keys.desired(PARTNER, 'nul2'), 'snap');
    await accepted(showEvent('show.updated', sampleShow('nul2', nulls), '2026-11-24T17:00:02Z'));
    expect(await svc.rt.redis.hget(svc.rt.keys.desired(PARTNER, 'nul2'), 'snap')).toBe(before);
  });

  test('an order.created with clickId and showId null → 202, stored as the one that omits them', async () => {
    const created = (id: string, extra: Record<string, unknown>) => ({ type: 'order.created', occurredAt: '2026-11-24T18:10:00Z', data: { order: { id, ...extra, createdAt: '2026-11-24T18:10:00Z', lines: [], total: { amount: 100, currency: 'USD' } } } });
    await accepted(created('ord-null', { clickId: null, showId: null }));
    await accepted(created('ord-absent', {}));
    const stored = async (orderId: string): Promise<string> => {
      const [[, fields]] = (await svc.rt.redis.xrange(svc.rt.keys.orderEvents(PARTNER, orderId), '-', '+')) as [[string, string[]]];
      return fields[fields.indexOf('event') + 1]!.replaceAll(`"${orderId}"`, '"O"');
    };
    expect(await stored('ord-null')).toBe(await stored('ord-absent'));
    expect(await stored('ord-null')).not.toContain('null');
  });

  test('a required field given null stays a 400 naming it, nothing stored', async () => {
    const order = { id: 'ord-req', createdAt: '2026-11-24T18:10:00Z', lines: [], total: { amount: 100, currency: 'USD' } };
    expect(paths(await refused(400, { type: 'order.created', occurredAt: '2026-11-24T18:10:00Z', data: { order: { ...order, total: null } } }))).toEqual(['data.order.total']);
    expect(paths(await refused(400, { type: 'order.created', occurredAt: '2026-11-24T18:10:00Z', data: { order: { ...order, createdAt: null } } }))).toEqual(['data.order.createdAt']);
    expect(paths(await refused(400, { type: 'product.updated', occurredAt: '2026-11-24T17:00:00Z', data: { showId: 'nul3', product: product('p1', { url: null }) } }))).toEqual(['data.product.url']);
    expect(paths(await refused(400, showEvent('show.scheduled', sampleShow('nul3', { title: null }), '2026-11-24T17:00:00Z')))).toEqual(['data.show.title']);
    expect(paths(await refused(400, showEvent('show.scheduled', sampleShow('nul3', { products: null }), '2026-11-24T17:00:00Z')))).toEqual(['data.show.products']);
  });

  test('stored events parse again to the same event (worker, sweep): null fields leave nothing behind', () => {
    const ev = { type: 'order.created', occurredAt: '2026-11-24T18:10:00Z', data: { order: { id: 'o', clickId: null, showId: null, createdAt: '2026-11-24T18:10:00Z', lines: [], total: { amount: 1, currency: 'USD' } } } };
    const parsed = PartnerEventSchema.parse(ev);
    expect(Object.keys(parsed.data)).toEqual(['order']);
    expect(PartnerEventSchema.parse(JSON.parse(JSON.stringify(parsed)))).toStrictEqual(parsed);
  });

  test('property: for any event, an absent optional field given as null parses to the same value (no null, no extra key)', () => {
    const id = fc.stringMatching(/^[A-Za-z0-9_.:-]{1,12}$/);
    const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });
    const product = fc.record({ id, title: fc.constant('t'), price: fc.constant({ amount: 1, currency: 'USD' }), url: fc.constant('https://shop.example.com/p'), imageUrl: maybe(fc.constant('https://img.example.com/p.png')), sku: maybe(fc.stringMatching(/^[A-Z0-9 ./]{0,8}$/)) });
    const at = '2026-11-24T18:00:00Z';
    const event = fc.oneof(
      fc.record({ type: fc.constantFrom('show.scheduled', 'show.updated', 'show.live'), occurredAt: fc.constant(at), data: fc.record({ show: fc.record({ id, title: fc.constant('s'), description: maybe(fc.stringMatching(/^[A-Z0-9 ]{0,8}$/)), scheduledAt: fc.constant(at), state: fc.constant('scheduled'), sourceUrl: maybe(fc.constant('srt://enc.example.com:9000')), products: fc.array(product, { maxLength: 3 }), pinnedProductIds: fc.constant([]) }) }) }),
      fc.record({ type: fc.constant('product.updated'), occurredAt: fc.constant(at), data: fc.record({ showId: id, product }) }),
      fc.record({ type: fc.constant('order.created'), occurredAt: fc.constant(at), data: fc.record({ order: fc.record({ id, clickId: maybe(id), showId: maybe(id), createdAt: fc.constant(at), lines: fc.constant([]), total: fc.constant({ amount: 1, currency: 'USD' }) }) }) }),
    );
    /** The event as a serializer writing null for absent values sends it (every undefined key: null), and as one that omits them. */
    const withNulls = (v: unknown): unknown => (Array.isArray(v) ? v.map(withNulls) : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, x === undefined ? null : withNulls(x)])) : v);
    fc.assert(
      fc.property(event, (ev) => {
        const omitted = PartnerEventSchema.parse(JSON.parse(JSON.stringify(ev)));
        const nulled = PartnerEventSchema.parse(withNulls(ev));
        expect(nulled).toStrictEqual(omitted);
        expect(JSON.stringify(nulled)).not.toContain('null');
      }),
      { numRuns: 300 },
    );
  });
});

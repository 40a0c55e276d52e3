/**
 * The TikTok Shop adapter against the TikTok Shop simulator over real HTTP: the operator-link path,
 * request signing (recomputed here independently), token refresh, the envelope error codes, every
 * fault kind, webhook verification + order lookup, and the affiliate order report's pagination.
 */
import { createHmac } from 'node:crypto';
import axios from 'axios';
import { SIM_ACCOUNTS, simTargetCredentials } from '../../src/simulators/sim.accounts.js';
import type { SimRequestRecord } from '../../src/simulators/sim.platform.js';
import type { PinSpec, RemoteShow } from '../../src/targets/target.adapter.js';
import { ActionRequiredError, AuthExpiredError, PermanentError, PinRefusedError, RateLimitedError, RetryableError, WebhookAuthError } from '../../src/targets/target.errors.js';
import { buildTiktokAdapter, type TiktokAdapterOptions } from '../../src/targets/tiktok/tiktok.adapter.js';
import { signRequest, webhookSignature } from '../../src/targets/tiktok/tiktok.sign.js';
import { MemoryOnce, buildOpContext, caught } from '../helpers/adapter-context.js';
import { adapterHarness, useSimulators, type AdapterHarness as Harness } from '../helpers/adapter-harness.js';
import { startLateProxy } from '../helpers/late-proxy.js';
import { platformSim, line, useReceiver } from '../helpers/adapter-sim.js';

type TtCredentials = { appKey: string; appSecret: string; refreshToken: string; shopCipher: string };
/** Shop a and shop b, both authorised for the simulator's seeded app (src/simulators/sim.accounts.ts). */
const CREDENTIALS = simTargetCredentials('tiktok', 'a') as TtCredentials;
const SHOP_B = simTargetCredentials('tiktok', 'b') as TtCredentials;
const SHOP_B_ID = SIM_ACCOUNTS.tiktok.shops[1]!.shopId;
const PIN: PinSpec = {
  productId: 'p-lip-oil',
  title: 'Lip Oil',
  price: { amount: 1800, currency: 'USD' },
  linkUrl: 'http://127.0.0.1:3000/l/AbCdEf',
  platformProductId: '1729384756012345678',
};
const PROMO_PATH = `/affiliate_seller/202405/products/${PIN.platformProductId}/promotion_link/generate`;
const SEARCH_PATH = '/affiliate_seller/202410/orders/search';

const sim = useSimulators();
const receiver = useReceiver();

// --- helpers ------------------------------------------------------------------------------------

function harness(opts: { credentials?: Record<string, string>; timeoutMs?: number; adapter?: TiktokAdapterOptions; baseUrl?: string } = {}): Harness {
  return adapterHarness((ctx) => buildTiktokAdapter(ctx, opts.adapter), {
    platform: 'tiktok',
    baseUrl: opts.baseUrl ?? `${sim.url}/tiktok`,
    credentials: opts.credentials ?? CREDENTIALS,
    timeoutMs: opts.timeoutMs ?? 3_000,
  });
}

const { control, effects, requests, lastSeq } = platformSim(() => sim.url, 'tiktok');
const q1 = (r: SimRequestRecord, k: string): string | undefined => {
  const v = r.query[k];
  return Array.isArray(v) ? v[0] : v;
};
const newRoom = async (title = 'Glow live', account?: string): Promise<string> => ((await control('POST', '/shows', { title, ...(account ? { account } : {}) })) as { externalId: string }).externalId;
const newOrder = async (externalId: string, amount: number, createdAt?: string): Promise<string> =>
  ((await control('POST', '/orders', { externalId, productId: PIN.platformProductId, total: { amount, currency: 'USD' }, ...(createdAt ? { createdAt } : {}) })) as { orderId: string }).orderId;

/** TikTok's documented sign, recomputed from what the simulator received (not with the adapter's code). */
function recomputeSign(r: SimRequestRecord, secret = CREDENTIALS.appSecret): string {
  const params = Object.keys(r.query)
    .filter((k) => k !== 'sign' && k !== 'access_token')
    .sort()
    .map((k) => `${k}${q1(r, k) ?? ''}`)
    .join('');
  return createHmac('sha256', secret).update(`${secret}${r.path}${params}${r.body}${secret}`).digest('hex');
}

async function linked(h: Harness, roomId: string): Promise<RemoteShow> {
  return h.adapter.attachShow(roomId);
}

// --- tests --------------------------------------------------------------------------------------

describe('TikTok Shop adapter ↔ TikTok Shop simulator', () => {
  it('operator-link path: no API creates a LIVE, attach accepts the room id, pin generates a promotion link once, unpin does nothing', async () => {
    const h = harness({ credentials: { ...CREDENTIALS, creatorUsername: '@glowshop' } });
    expect(h.adapter.capabilities).toEqual({ createShow: 'operator_link', pin: 'affiliate_link', unpin: false, lifecycle: false, ingest: false, orderWebhooks: true, orderReport: true });
    await expect(h.adapter.createShow({ title: 't', description: undefined, scheduledAt: '2030-01-01T00:00:00Z' }, buildOpContext('mk'))).rejects.toBeInstanceOf(ActionRequiredError);

    const roomId = await newRoom('Glow live');
    expect(roomId).toMatch(/^\d{19}$/);
    const remote = await linked(h, roomId);
    expect(remote).toEqual({ externalId: roomId, url: 'https://www.tiktok.com/@glowshop/live', ingest: undefined, data: {} });
    expect((await linked(h, `https://www.tiktok.com/@glowshop/live?room_id=${roomId}`)).externalId).toBe(roomId);
    const bad = await caught(linked(h, 'my room'));
    expect(bad).toBeInstanceOf(PermanentError);
    expect((bad as PermanentError).reason).toBe('invalid_room_id');
    expect(await requests()).toEqual([]); // nothing to ask TikTok about a room

    await h.adapter.updateShow(remote, { title: 'x', description: undefined, scheduledAt: '2030-01-01T00:00:00Z' }, buildOpContext('u'));
    await h.adapter.startShow(remote, buildOpContext('s'));
    await h.adapter.endShow(remote, buildOpContext('e'));
    expect(await requests()).toEqual([]);

    const store = new MemoryOnce();
    const pinned = await h.adapter.pin(remote, PIN, buildOpContext('mk-pin', store));
    expect(pinned.ref).toMatch(/^https:\/\/affiliate\.tiktok\.com\/api\/v1\/share\/\w+$/);
    const again = await h.adapter.pin(remote, PIN, buildOpContext('mk-pin', store)); // a retry of the same intent
    expect(again.ref).toBe(pinned.ref);
    await h.adapter.unpin(remote, PIN, pinned.ref, buildOpContext('mk-unpin'));

    expect((await requests()).map(line)).toEqual(['GET /api/v2/token/refresh 200', `POST ${PROMO_PATH} 200`]);
    const fx = await effects();
    expect(fx.map((e) => [e.type, e.externalId, e.productId ?? null])).toEqual([
      ['show.created', roomId, null],
      ['product.pinned', roomId, PIN.platformProductId],
    ]);
    expect(fx[1]?.url).toBeUndefined(); // README "Platforms": url is for posted messages only

    const logs = h.logs.join('\n');
    for (const secret of [CREDENTIALS.appSecret, CREDENTIALS.refreshToken, h.tokens.token?.accessToken ?? 'none']) expect(logs).not.toContain(secret);
  });

  it("the order report asks for at most 3 months per search, as the shortest 3 months count (89 days); the simulator refuses a longer range", async () => {
    const h = harness();
    const to = new Date();
    const from = new Date(to.getTime() - 200 * 86_400_000);
    await h.adapter.listOrders!(from, to);
    const searches = (await requests()).filter((r) => r.path === SEARCH_PATH);
    expect(searches.map((r) => r.status)).toEqual([200, 200, 200]);
    for (const r of searches) {
      const body = JSON.parse(r.body) as { create_time_ge: number; create_time_lt: number };
      expect(body.create_time_lt - body.create_time_ge).toBeLessThanOrEqual(89 * 86_400);
    }
    // a 90-day range, signed as the adapter signs: refused (TikTok's three months may be 89 days)
    const token = h.tokens.token?.accessToken ?? '';
    const body = JSON.stringify({ create_time_ge: Math.floor(to.getTime() / 1000) - 90 * 86_400, create_time_lt: Math.floor(to.getTime() / 1000) });
    const query: Record<string, string> = { app_key: CREDENTIALS.appKey, timestamp: String(Math.floor(Date.now() / 1000)), shop_cipher: CREDENTIALS.shopCipher, page_size: '10' };
    const sign = signRequest({ appSecret: CREDENTIALS.appSecret, path: SEARCH_PATH, query, body });
    const r = await axios.post(`${sim.url}/tiktok${SEARCH_PATH}`, body, {
      params: { ...query, sign },
      headers: { 'content-type': 'application/json', 'x-tts-access-token': token },
      validateStatus: () => true,
    });
    expect((r.data as { code: number; message: string }).message).toBe('The time range cannot exceed 3 months');
  });

  it('signs every Open API request as documented and sends exactly the documented requests', async () => {
    const h = harness({ adapter: { pageSize: 20 } });
    const remote = await linked(h, await newRoom());
    await h.adapter.pin(remote, PIN, buildOpContext('mk-sign'));
    const from = new Date(Date.now() - 3600_000);
    const to = new Date(Date.now() + 1000);
    await h.adapter.listOrders!(from, to);

    const [refresh, promo, search] = await requests();
    expect([refresh, promo, search].map((r) => r && line(r))).toEqual(['GET /api/v2/token/refresh 200', `POST ${PROMO_PATH} 200`, `POST ${SEARCH_PATH} 200`]);

    // token refresh: unsigned GET on the auth host with the app credentials (and the shop's cipher,
    // which TikTok ignores and the simulator takes for a shop it has never seen)
    expect(refresh?.query).toEqual({ app_key: CREDENTIALS.appKey, app_secret: CREDENTIALS.appSecret, refresh_token: CREDENTIALS.refreshToken, grant_type: 'refresh_token', shop_cipher: CREDENTIALS.shopCipher });
    expect(refresh?.headers['x-tts-access-token']).toBeUndefined();
    expect(h.tokens.token?.accessToken).toMatch(/^TTP_/);

    for (const r of [promo, search]) {
      if (!r) throw new Error('missing request');
      expect(r.headers['x-tts-access-token']).toBe(h.tokens.token?.accessToken);
      expect(r.headers['content-type']).toBe('application/json');
      expect(q1(r, 'app_key')).toBe(CREDENTIALS.appKey);
      expect(q1(r, 'shop_cipher')).toBe(CREDENTIALS.shopCipher);
      expect(Math.abs(Number(q1(r, 'timestamp')) - Date.now() / 1000)).toBeLessThan(10);
      expect(q1(r, 'access_token')).toBeUndefined(); // the token travels in the header only
      expect(q1(r, 'sign')).toBe(recomputeSign(r));
    }
    expect(Object.keys(promo!.query).sort()).toEqual(['app_key', 'shop_cipher', 'sign', 'timestamp']);
    expect(promo!.body).toBe('');
    expect(Object.keys(search!.query).sort()).toEqual(['app_key', 'page_size', 'shop_cipher', 'sign', 'timestamp']);
    expect(q1(search!, 'page_size')).toBe('20');
    expect(search!.body).toBe(JSON.stringify({ create_time_ge: Math.ceil(from.getTime() / 1000), create_time_lt: Math.ceil(to.getTime() / 1000) }));
  });

  it('refreshes a rejected access token once (absolute expiry) and retries the call', async () => {
    const h = harness({ credentials: { ...CREDENTIALS, accessToken: 'TTP_given_by_operator' } });
    const remote = await linked(h, await newRoom());
    await h.adapter.pin(remote, PIN, buildOpContext('mk-r1'));
    expect((await requests()).map(line)).toEqual([
      `POST ${PROMO_PATH} 401`,
      'GET /api/v2/token/refresh 200',
      `POST ${PROMO_PATH} 200`,
    ]);
    const first = (await requests())[0];
    expect(first?.headers['x-tts-access-token']).toBe('TTP_given_by_operator');
    // access_token_expire_in is absolute: about a week from now, not a week after 1970
    const expiresAt = h.tokens.token?.expiresAt ?? 0;
    expect(expiresAt).toBeGreaterThan(Date.now() + 6 * 86_400_000);
    expect(expiresAt).toBeLessThan(Date.now() + 8 * 86_400_000);
    expect(h.tokens.token?.refreshToken).toBe(CREDENTIALS.refreshToken);
  });

  it('token_expired fault: 105002 → refresh → still 105002 is AuthExpiredError; once the fault stops it recovers', async () => {
    const h = harness();
    const remote = await linked(h, await newRoom());
    await h.adapter.pin(remote, PIN, buildOpContext('mk-t0'));
    const before = await lastSeq();
    await control('PUT', '/faults', { rate: 1, kinds: ['token_expired'] });
    const err = await caught(h.adapter.pin(remote, PIN, buildOpContext('mk-t1')));
    expect(err).toBeInstanceOf(AuthExpiredError);
    expect((err as AuthExpiredError).reason).toBe('105002');
    expect((await requests(before)).map(line)).toEqual([`POST ${PROMO_PATH} 401`, 'GET /api/v2/token/refresh 200', `POST ${PROMO_PATH} 401`]);

    await control('PUT', '/faults', { rate: 0, kinds: [] });
    const mid = await lastSeq();
    await h.adapter.pin(remote, PIN, buildOpContext('mk-t2'));
    expect((await requests(mid)).map(line)).toEqual([`POST ${PROMO_PATH} 401`, 'GET /api/v2/token/refresh 200', `POST ${PROMO_PATH} 200`]);
  });

  it('a dead refresh token → PermanentError asking to re-authorise, without leaking secrets', async () => {
    await control('POST', '/revocations', { token: 'revoked-ROW_dead' });
    const h = harness({ credentials: { ...CREDENTIALS, refreshToken: 'revoked-ROW_dead' } });
    const remote = await linked(h, await newRoom());
    const err = await caught(h.adapter.pin(remote, PIN, buildOpContext('mk-dead')));
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as PermanentError).reason).toBe('refresh_refused');
    expect((err as PermanentError).message).toMatch(/Re-authorise the app/);
    // every field of the target (a PATCH replaces the credentials), the refresh token the new one
    const patch = `PATCH /v1/partners/ptn_test/targets/tgt_test {"credentials": {${Object.keys(CREDENTIALS).map((k) => `"${k}": "${k === 'refreshToken' ? '<new>' : '…'}"`).join(', ')}}}`;
    expect((err as PermanentError).message).toContain(patch);
    expect(patch).toContain('"shopCipher": "…"');
    for (const s of [CREDENTIALS.appSecret, 'revoked-ROW_dead']) expect((err as Error).message).not.toContain(s);
    expect((await requests()).map(line)).toEqual(['GET /api/v2/token/refresh 200']); // code 36004005 inside a 200
    expect(h.tokens.clears).toBe(1); // a dead refresh token: the token record goes
  });

  it('the credential check refuses a shop authorisation without the scopes a mirror uses (the token refresh names them), instead of a 105005 at the first pin', async () => {
    const { credentials: limitedCredentials } = (await control('POST', '/accounts', { limited: true })) as { credentials: TtCredentials };
    const limited = harness({ credentials: limitedCredentials });
    const err = await caught(limited.adapter.verifyCredentials!());
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as PermanentError).reason).toBe('missing_scopes');
    expect((err as PermanentError).message).toContain('seller.affiliate_collaboration.write, seller.affiliate_collaboration.read');
    for (const secret of [limitedCredentials.appSecret, limitedCredentials.refreshToken]) expect((err as Error).message).not.toContain(secret);
    // a full authorisation passes
    await expect(harness().adapter.verifyCredentials!()).resolves.toEqual({ accountId: SIM_ACCOUNTS.tiktok.shops[0]!.shopId }) // the shop's id names the account;
  });

  // The shops' ids are read since the account id comes from them: one entry with an odd id (empty, a
  // number) failed the whole check, which passed before. An odd id reads as unknown, for that shop only.
  it('the credential check passes when Get Authorized Shops gives a shop an empty or numeric id; an odd id of our own shop names no account', async () => {
    const proxy = await startLateProxy(sim.url);
    try {
      const h = harness({ baseUrl: `${proxy.url}/tiktok` });
      const shopsAnswer = (edit: (shops: Record<string, unknown>[]) => void): void =>
        proxy
          .holdAnswerNext((m, p) => m === 'GET' && p.endsWith('/authorization/202309/shops'), (body) => {
            const json = JSON.parse(body) as { data: { shops: Record<string, unknown>[] } };
            edit(json.data.shops);
            return JSON.stringify(json);
          })
          .release();
      shopsAnswer((shops) => shops.unshift({ id: '', cipher: 'GCP_other_shop_1' }, { id: 7_494_049, cipher: 'GCP_other_shop_2' }));
      await expect(h.adapter.verifyCredentials!()).resolves.toEqual({ accountId: SIM_ACCOUNTS.tiktok.shops[0]!.shopId });
      shopsAnswer((shops) => (shops[0]!['id'] = 7_494_049));
      await expect(h.adapter.verifyCredentials!()).resolves.toEqual({ accountId: undefined });
    } finally {
      await proxy.close();
    }
  });

  it('the credential check exercises the refresh token even when a working access token is given (that one lasts a week)', async () => {
    const good = harness();
    await good.adapter.verifyCredentials!();
    const accessToken = good.tokens.token!.accessToken;
    await control('POST', '/revocations', { token: 'ROW_revoked_refresh' });
    const dead = harness({ credentials: { ...CREDENTIALS, refreshToken: 'ROW_revoked_refresh', accessToken } });
    const err = await caught(dead.adapter.verifyCredentials!());
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as PermanentError).reason).toBe('refresh_refused');
    expect((err as Error).message).not.toContain(accessToken);
    // with a live refresh token the given access token is no obstacle: one refresh, then the shops
    const before = await lastSeq();
    await harness({ credentials: { ...CREDENTIALS, accessToken } }).adapter.verifyCredentials!();
    expect((await requests(before)).map(line)).toEqual(['GET /api/v2/token/refresh 200', 'GET /authorization/202309/shops 200']);
  });

  it('105005 (scope not granted) names the scope; 106001 (bad sign) and 36009004 (clock) are typed', async () => {
    // A shop that authorised the app without the affiliate scopes.
    const { credentials: limitedCredentials } = (await control('POST', '/accounts', { limited: true })) as { credentials: TtCredentials };
    const limited = harness({ credentials: limitedCredentials });
    const remote = await linked(limited, await newRoom());
    const scope = await caught(limited.adapter.pin(remote, PIN, buildOpContext('mk-scope')));
    expect(scope).toBeInstanceOf(PermanentError);
    expect((scope as PermanentError).reason).toBe('105005');
    expect((scope as PermanentError).message).toContain('seller.affiliate_collaboration.write');

    // A token obtained with the right secret, then requests signed with another one.
    const good = harness();
    await good.adapter.pin(remote, PIN, buildOpContext('mk-good'));
    const wrong = harness({ credentials: { ...CREDENTIALS, appSecret: 'not-the-app-secret', creatorUsername: '@spring.live' } });
    wrong.tokens.token = good.tokens.token;
    const before = await lastSeq();
    const sign = await caught(wrong.adapter.pin(remote, PIN, buildOpContext('mk-wrong')));
    expect(sign).toBeInstanceOf(PermanentError);
    expect((sign as PermanentError).reason).toBe('106001');
    expect((sign as PermanentError).message).toMatch(/appSecret/);
    // The whole set (a PATCH replaces the credentials): "fix the credentials with PATCH …" alone had the
    // operator send appKey and appSecret, and the shop's cipher, refresh token and creatorUsername went.
    const fix = `{"credentials": {${Object.keys({ ...CREDENTIALS, creatorUsername: '' }).map((k) => `"${k}": "${k === 'appKey' || k === 'appSecret' ? '<new>' : '…'}"`).join(', ')}}}`;
    expect((sign as PermanentError).message).toContain(fix);
    expect(fix).toContain('"creatorUsername": "…"');
    const [refused] = await requests(before);
    expect(refused?.status).toBe(401);
    expect(q1(refused!, 'sign')).toBe(recomputeSign(refused!, 'not-the-app-secret'));

    // A clock 10 minutes behind: TikTok refuses the timestamp.
    const skewed = harness({ adapter: { now: () => Date.now() - 10 * 60_000 } });
    skewed.tokens.token = good.tokens.token;
    const clock = await caught(skewed.adapter.pin(remote, PIN, buildOpContext('mk-clock')));
    expect(clock).toBeInstanceOf(RetryableError);
    expect((clock as RetryableError).reason).toBe('36009004');
    expect((clock as RetryableError).delayMs).toBe(30_000);
    expect((clock as RetryableError).message).toMatch(/clock/);
  });

  // --- issue 9: what 36009004, 101000 and 36009007 mean ----------------------------------------

  it('an access token TikTok does not know (36009004 "x-tts-access-token header is invalid", or 101000) is refreshed, not waited on as clock skew', async () => {
    for (const [given, code] of [
      ['TTP_not_issued_by_tiktok', 36009004],
      ['pasted-garbage', 101000],
    ] as const) {
      await axios.post(`${sim.url}/_sim/reset`, {});
      const h = harness({ credentials: { ...CREDENTIALS, accessToken: given } });
      const remote = await linked(h, await newRoom());
      const pinned = await h.adapter.pin(remote, PIN, buildOpContext(`mk-inv-${code}`));
      expect(pinned.ref).toMatch(/^https:\/\/affiliate\.tiktok\.com\//);
      const reqs = await requests();
      expect(reqs.map(line)).toEqual([`POST ${PROMO_PATH} 401`, 'GET /api/v2/token/refresh 200', `POST ${PROMO_PATH} 200`]);
      expect(reqs[0]?.headers['x-tts-access-token']).toBe(given);
      // what TikTok answered (the client logs the envelope code, never the token)
      expect(h.logs.find((l) => l.includes('"status":401'))).toContain(`"code":${code}`);
    }
  });

  it('36009004 for an unknown app_key is a credentials problem (permanent, says what to fix), not clock skew', async () => {
    const good = harness();
    const remote = await linked(good, await newRoom());
    await good.adapter.pin(remote, PIN, buildOpContext('mk-app-good'));
    const other = harness({ credentials: { ...CREDENTIALS, appKey: '6a6neverseen' } });
    other.tokens.token = good.tokens.token;
    const err = await caught(other.adapter.pin(remote, PIN, buildOpContext('mk-app-bad')));
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as PermanentError).reason).toBe('invalid_app_key');
    expect((err as PermanentError).message).toContain('Invalid `app_key` query parameter');
    expect((err as PermanentError).message).toContain('PATCH /v1/partners/ptn_test/targets/tgt_test');
  });

  it('a clock 1 minute ahead is refused too (TikTok allows 30 s ahead): retried later as clock skew', async () => {
    const good = harness();
    const remote = await linked(good, await newRoom());
    await good.adapter.pin(remote, PIN, buildOpContext('mk-ahead-good'));
    const ahead = harness({ adapter: { now: () => Date.now() + 60_000 } });
    ahead.tokens.token = good.tokens.token;
    const err = await caught(ahead.adapter.pin(remote, PIN, buildOpContext('mk-ahead')));
    expect(err).toBeInstanceOf(RetryableError);
    expect((err as RetryableError).message).toContain('must not exceed the current time by more than 30 seconds');
  });

  it('36009007 (request timeout on TikTok\'s side) is retried, not a permanent failure', async () => {
    const h = harness();
    const remote = await linked(h, await newRoom());
    await h.adapter.pin(remote, PIN, buildOpContext('mk-gw0'));
    await control('PUT', '/limits', { latencyMs: 30, gatewayTimeoutMs: 20 });
    const err = await caught(h.adapter.pin(remote, PIN, buildOpContext('mk-gw1')));
    expect(err).toBeInstanceOf(RetryableError);
    expect((err as RetryableError).reason).toBe('36009007');
    await control('PUT', '/limits', { latencyMs: 0 });
    await expect(h.adapter.pin(remote, PIN, buildOpContext('mk-gw1'))).resolves.toMatchObject({ ref: expect.any(String) });
  });

  it('rate limit (window full → HTTP 429 / 36009002) → RateLimitedError and a limiter block', async () => {
    await control('PUT', '/limits', { requestsPerWindow: 1, windowMs: 60_000 });
    const h = harness();
    const remote = await linked(h, await newRoom());
    await h.adapter.pin(remote, PIN, buildOpContext('mk-rl1')); // the refresh is not counted, the pin takes the slot
    const t0 = Date.now();
    const err = await caught(h.adapter.pin(remote, PIN, buildOpContext('mk-rl2')));
    expect(err).toBeInstanceOf(RateLimitedError);
    expect((err as RateLimitedError).reason).toBe('36009002');
    expect((err as RateLimitedError).delayMs).toBe(2_000);
    expect(h.limiter.blocks).toHaveLength(1);
    expect(h.limiter.blocks[0]?.reason).toBe('tiktok rate limit');
    expect(h.limiter.blocks[0]?.untilMs).toBeGreaterThanOrEqual(t0 + 2_000);
    expect((await requests()).map(line).slice(-1)).toEqual([`POST ${PROMO_PATH} 429`]);
  });

  it('the order report waits out a full window (429 / 36009002) page by page instead of failing', async () => {
    await control('PUT', '/limits', { requestsPerWindow: 1, windowMs: 1_000 });
    const h = harness();
    const from = new Date(Date.now() - 3600_000);
    const to = new Date(Date.now() + 1000);
    // Two reports at once on one shop (two reconciliations of a period): one window's request each.
    const t0 = Date.now();
    const [a, b] = await Promise.all([h.adapter.listOrders!(from, to), h.adapter.listOrders!(from, to)]);
    expect([a, b]).toEqual([[], []]);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(2_000); // the refused one waited TikTok's 2 s
    expect((await requests()).filter((r) => r.path === SEARCH_PATH).map(line)).toEqual([`POST ${SEARCH_PATH} 200`, `POST ${SEARCH_PATH} 429`, `POST ${SEARCH_PATH} 200`]);
  });

  it('faults: 429 → RateLimitedError + block, 500 → RetryableError (36009003), timeout → RetryableError', async () => {
    const h = harness({ timeoutMs: 500 });
    const remote = await linked(h, await newRoom());
    await h.adapter.pin(remote, PIN, buildOpContext('mk-f0')); // token cached: faults hit the API call itself

    await control('PUT', '/faults', { rate: 1, kinds: ['429'] });
    const e429 = await caught(h.adapter.pin(remote, PIN, buildOpContext('mk-f1')));
    expect(e429).toBeInstanceOf(RateLimitedError);
    expect(h.limiter.blocks).toHaveLength(1);

    await control('PUT', '/faults', { rate: 1, kinds: ['500'] });
    const e500 = await caught(h.adapter.pin(remote, PIN, buildOpContext('mk-f2')));
    expect(e500).toBeInstanceOf(RetryableError);
    expect((e500 as RetryableError).reason).toBe('36009003');

    await control('PUT', '/faults', { rate: 1, kinds: ['timeout'], hangMs: 5_000 });
    const eTimeout = await caught(h.adapter.pin(remote, PIN, buildOpContext('mk-f3')));
    expect(eTimeout).toBeInstanceOf(RetryableError);
    expect((eTimeout as RetryableError).reason).toBe('timeout');
  });

  // --- issue 13: credentials work only for their own app and shop --------------------------------

  it('the app secret is the one registered for the app, not learned from the first call: a wrong secret gets no token (36004002), and the token record stays', async () => {
    const wrong = harness({ credentials: { ...CREDENTIALS, appSecret: 'not-the-app-secret' } });
    const remote = await linked(wrong, await newRoom());
    const err = await caught(wrong.adapter.pin(remote, PIN, buildOpContext('mk-first-wrong')));
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as PermanentError).reason).toBe('app_credentials_refused');
    expect((err as PermanentError).message).toMatch(/appSecret/);
    expect((err as PermanentError).message).toContain('PATCH /v1/partners/ptn_test/targets/tgt_test');
    expect((err as Error).message).not.toContain('not-the-app-secret');
    expect(wrong.tokens.clears).toBe(0);
    expect((await requests()).map(line)).toEqual(['GET /api/v2/token/refresh 200']);
    expect(((await requests())[0] as SimRequestRecord).status).toBe(200);
    // and the right secret still works afterwards (the wrong one was not learned)
    await expect(harness().adapter.pin(remote, PIN, buildOpContext('mk-first-right'))).resolves.toMatchObject({ ref: expect.any(String) });
  });

  it('an app_key never seen is registered with the secret given (CONTRACT §9), its made-up refresh token is a new shop with the given cipher; then only that secret works', async () => {
    const made = { appKey: '6a6neverseen', appSecret: 'made-up-secret', refreshToken: 'ROW_made_up_refresh', shopCipher: 'ROW_made_up_cipher' };
    await expect(harness({ credentials: made }).adapter.verifyCredentials!()).resolves.toEqual({ accountId: expect.any(String) });
    // shop a's refresh token is no grant of this app; the app takes its own secret only
    const crossed = await caught(harness({ credentials: { ...made, refreshToken: CREDENTIALS.refreshToken } }).adapter.verifyCredentials!());
    expect((crossed as PermanentError).reason).toBe('refresh_refused');
    const wrongSecret = await caught(harness({ credentials: { ...made, appSecret: 'another-secret' } }).adapter.verifyCredentials!());
    expect(wrongSecret).toBeInstanceOf(PermanentError);
    // the new shop's token with shop a's cipher: refused (36009004 invalid identifier)
    const remote = await linked(harness({ credentials: { ...made, shopCipher: CREDENTIALS.shopCipher } }), await newRoom());
    const err = await caught(harness({ credentials: { ...made, shopCipher: CREDENTIALS.shopCipher } }).adapter.pin(remote, PIN, buildOpContext('mk-made')));
    expect(err).toBeInstanceOf(PermanentError);
    expect(await effects()).toEqual([expect.objectContaining({ type: 'show.created' })]);
  });

  it("a refresh token works only with the app it was issued to: shop a's refresh token with another registered app → 36004005", async () => {
    await control('POST', '/apps', { appKey: '6a6secondapp', appSecret: 'second-app-secret' });
    const h = harness({ credentials: { ...CREDENTIALS, appKey: '6a6secondapp', appSecret: 'second-app-secret' } });
    const remote = await linked(h, await newRoom());
    const err = await caught(h.adapter.pin(remote, PIN, buildOpContext('mk-otherapp')));
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as PermanentError).reason).toBe('refresh_refused');
  });

  it("shop a's token with shop b's shop_cipher (or a made-up one) is refused: 36009004 invalid identifier, nothing pinned", async () => {
    for (const shopCipher of [SHOP_B.shopCipher, 'ROW_any_cipher']) {
      await axios.post(`${sim.url}/_sim/reset`, {});
      const remote = await linked(harness(), await newRoom());
      const h = harness({ credentials: { ...CREDENTIALS, shopCipher } });
      const err = await caught(h.adapter.pin(remote, PIN, buildOpContext(`mk-cipher-${shopCipher}`)));
      expect(err).toBeInstanceOf(PermanentError);
      expect((err as PermanentError).reason).toBe('invalid_identifier');
      expect((err as PermanentError).message).toContain('shopCipher');
      expect((await requests()).map(line)).toEqual(['GET /api/v2/token/refresh 200', `POST ${PROMO_PATH} 200`]);
      expect((await effects()).filter((e) => e.type === 'product.pinned')).toEqual([]);
    }
  });

  it("the credential check of shop a's token with shop b's cipher names the shop it does not cover and the whole PATCH that fixes it", async () => {
    const err = await caught(harness({ credentials: { ...CREDENTIALS, shopCipher: SHOP_B.shopCipher } }).adapter.verifyCredentials!());
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as PermanentError).reason).toBe('shop_not_authorized');
    const patch = `PATCH /v1/partners/ptn_test/targets/tgt_test {"credentials": {${Object.keys(CREDENTIALS).map((k) => `"${k}": "${k === 'shopCipher' ? '<new>' : '…'}"`).join(', ')}}}`;
    expect((err as PermanentError).message).toContain(patch);
    expect((err as PermanentError).message).not.toContain(CREDENTIALS.appSecret);
  });

  it("a shop sees only its own rooms' orders: shop b's report and order lookup do not show shop a's order", async () => {
    const roomA = await newRoom('Shop a live', SIM_ACCOUNTS.tiktok.shops[0]!.shopId);
    const orderA = await newOrder(roomA, 2500);
    const b = harness({ credentials: SHOP_B });
    const a = harness();
    const from = new Date(Date.now() - 60_000);
    const to = new Date(Date.now() + 1000);
    expect((await a.adapter.listOrders!(from, to)).map((o) => o.orderId)).toEqual([orderA]);
    expect(await b.adapter.listOrders!(from, to)).toEqual([]);
    const roomB = await newRoom('Shop b live', SHOP_B_ID);
    const orderB = await newOrder(roomB, 1200);
    expect((await b.adapter.listOrders!(from, new Date(Date.now() + 1000))).map((o) => o.orderId)).toEqual([orderB]);
  });

  // Deliveries of one order share lookups, but only ones that started after they arrived: the running
  // one read the order before they came (a cancellation joining it was stored not cancelled).
  it('webhook deliveries of one order share only a lookup that starts after they arrived: the next one, once the running one settled (even failed); none left behind', async () => {
    const proxy = await startLateProxy(sim.url);
    try {
      const h = harness({ baseUrl: `${proxy.url}/tiktok` });
      const orderId = await newOrder(await newRoom(), 2500);
      const raw = Buffer.from(JSON.stringify({ type: 1, data: { order_id: orderId } }));
      const deliver = (): Promise<unknown> => h.adapter.handleWebhook!({ authorization: webhookSignature(CREDENTIALS.appKey, CREDENTIALS.appSecret, raw) }, raw);
      const isDetail = (m: string, p: string): boolean => m === 'GET' && p.endsWith('/order/202309/orders');
      // The first lookup's Get Order Detail is answered with TikTok's internal error, held until released.
      const first = proxy.holdAnswerNext(isDetail, () => JSON.stringify({ code: 36009003, message: 'Internal error, please try again later', request_id: 'r', data: {} }));
      const before = await lastSeq();
      const a = deliver();
      await first.answered;
      const [b, c] = [deliver(), deliver()]; // both arrive while it runs
      first.release();
      await expect(a).rejects.toBeInstanceOf(RetryableError);
      const [ob, oc] = (await Promise.all([b, c])) as unknown[][];
      expect(ob).toEqual([expect.objectContaining({ orderId, total: { amount: 2500, currency: 'USD' } })]);
      expect(oc![0]).toBe(ob![0]); // one lookup, after the failed one
      expect((await requests(before)).filter((r) => r.path === '/order/202309/orders')).toHaveLength(2);
      // Settled: a later delivery makes a lookup of its own (nothing of the burst is left to join).
      await expect(deliver()).resolves.toEqual(ob);
      expect((await requests(before)).filter((r) => r.path === '/order/202309/orders')).toHaveLength(3);
    } finally {
      await proxy.close();
    }
  });

  it('verifies webhooks (app_key + body HMAC) and looks the order up: room, amounts, commission, refunds', async () => {
    const h = harness();
    const roomId = await newRoom();
    await h.adapter.listOrders!(new Date(Date.now() - 1000), new Date()); // the app authorises itself first
    await control('PUT', '/webhook', { url: receiver.url });

    const orderId = await newOrder(roomId, 4999);
    expect(receiver.got).toHaveLength(1);
    const hook = receiver.got[0]!;
    const headers = { authorization: hook.headers.authorization, 'content-type': hook.headers['content-type'] };
    const body = JSON.parse(hook.body.toString('utf8')) as { type: number; data: Record<string, unknown> };
    expect(body.type).toBe(1);
    expect(Object.keys(body.data).sort()).toEqual(['is_on_hold_order', 'order_id', 'order_status', 'update_time']); // no amounts, no room
    expect(headers.authorization).toBe(createHmac('sha256', CREDENTIALS.appSecret).update(CREDENTIALS.appKey).update(hook.body).digest('hex'));

    const before = await lastSeq();
    const orders = await h.adapter.handleWebhook!(headers, hook.body);
    expect(orders).toEqual([
      {
        orderId,
        externalShowId: roomId,
        productId: PIN.platformProductId,
        clickId: undefined,
        createdAt: expect.any(String),
        total: { amount: 4999, currency: 'USD' },
        refunded: { amount: 0, currency: 'USD' },
        status: 'PROCESSING',
        commission: { amount: 500, currency: 'USD' },
      },
    ]);
    const lookups = await requests(before);
    expect(lookups.map(line)).toEqual(['GET /order/202309/orders 200', `POST ${SEARCH_PATH} 200`]);
    expect(q1(lookups[0]!, 'ids')).toBe(orderId);
    for (const r of lookups) expect(q1(r, 'sign')).toBe(recomputeSign(r));

    // a refund: RETURN_STATUS_CHANGE, and the order now reports its refunded quantity
    await control('POST', `/orders/${orderId}/refunds`, { amount: { amount: 4999, currency: 'USD' } });
    const refundHook = receiver.got[1]!;
    expect((JSON.parse(refundHook.body.toString('utf8')) as { type: number }).type).toBe(12);
    const [refunded] = await h.adapter.handleWebhook!({ authorization: refundHook.headers.authorization }, refundHook.body);
    expect(refunded?.refunded).toEqual({ amount: 4999, currency: 'USD' });
    expect(refunded?.status).toBe('CANCELLED');

    // invalid: tampered body, wrong or missing signature → WebhookAuthError, nothing asked of TikTok
    const mid = await lastSeq();
    const tampered = Buffer.from(hook.body.toString('utf8').replace(orderId, `${orderId}9`));
    await expect(h.adapter.handleWebhook!(headers, tampered)).rejects.toBeInstanceOf(WebhookAuthError);
    await expect(h.adapter.handleWebhook!({ authorization: 'f'.repeat(64) }, hook.body)).rejects.toBeInstanceOf(WebhookAuthError);
    await expect(h.adapter.handleWebhook!({}, hook.body)).rejects.toBeInstanceOf(WebhookAuthError);
    expect(await requests(mid)).toEqual([]);

    // a correctly signed topic that is not an order change: acknowledged, nothing returned
    const other = Buffer.from(JSON.stringify({ type: 5, tts_notification_id: '1', shop_id: '2', timestamp: 1, data: { product_id: '9' } }));
    const sig = createHmac('sha256', CREDENTIALS.appSecret).update(CREDENTIALS.appKey).update(other).digest('hex');
    await expect(h.adapter.handleWebhook!({ authorization: sig }, other)).resolves.toEqual([]);
  });

  it('pages through the affiliate order report and keeps exactly [from, to)', async () => {
    const h = harness({ adapter: { pageSize: 3 } });
    const roomId = await newRoom();
    const base = Date.parse('2030-03-01T12:00:00Z');
    const at = (s: number): string => new Date(base + s * 1000).toISOString();
    const ids: string[] = [];
    ids.push(await newOrder(roomId, 1000, at(-1))); // before the window
    for (let i = 0; i < 7; i++) ids.push(await newOrder(roomId, 1000 + i, at(i * 60)));
    ids.push(await newOrder(roomId, 999, at(7 * 60))); // exactly at `to`: excluded
    await control('POST', `/orders/${ids[2]}/refunds`, { amount: { amount: 1001, currency: 'USD' } });

    const orders = await h.adapter.listOrders!(new Date(base), new Date(base + 7 * 60_000));
    expect(orders.map((o) => o.orderId)).toEqual(ids.slice(1, 8));
    expect(orders.every((o) => o.externalShowId === roomId)).toBe(true);
    expect(orders[1]).toMatchObject({ total: { amount: 1001, currency: 'USD' }, refunded: { amount: 1001, currency: 'USD' }, commission: { amount: 100, currency: 'USD' } });
    expect(orders[0]?.createdAt).toBe(new Date(base).toISOString());

    const searches = (await requests()).filter((r) => r.path === SEARCH_PATH);
    expect(searches).toHaveLength(3); // 7 orders, 3 per page
    expect(searches.map((r) => q1(r, 'page_token') ?? null)).toEqual([null, expect.any(String), expect.any(String)]);
    expect(searches.every((r) => q1(r, 'sign') === recomputeSign(r))).toBe(true);
  });
});

describe('long product ids', () => {
  it('a product id of 101-128 characters (a contract id, sent when the product has no sku) gets its promotion link: the simulator answered 414 over 100, and the mirror failed', async () => {
    const h = harness();
    const remote = await linked(h, await newRoom('Long ids'));
    const pin = { ...PIN, platformProductId: 'x'.repeat(128) };
    expect((await h.adapter.pin(remote, pin, buildOpContext('mk-long'))).ref).toMatch(/^https:\/\/affiliate\.tiktok\.com\/api\/v1\/share\/\w+$/);
    expect((await effects()).filter((e) => e.type === 'product.pinned').map((e) => e.productId)).toEqual([pin.platformProductId]);
  });
});

describe('product ids TikTok cannot take', () => {
  it("a product id (a partner's sku) with a space, '/', '?', '#', '%' or an emoji is sent percent-encoded in the path, and TikTok's 36009001 'Invalid product_id' is a PinRefusedError (the pin's alone); '', '.' and '..' are refused before anything is sent", async () => {
    const h = harness();
    const remote = await linked(h, await newRoom('Refused ids'));
    for (const [i, id] of ['LIP OIL 01', 'a/b', '?x=1', '#h', '%2F', '\u{1F389}'].entries()) {
      const since = await lastSeq();
      const err = await caught(h.adapter.pin(remote, { ...PIN, platformProductId: id }, buildOpContext(`refused-${i}`)));
      expect(err).toBeInstanceOf(PinRefusedError);
      expect((err as PinRefusedError).reason).toBe('36009001');
      expect((err as Error).message).toMatch(/TikTok Shop refused to generate a promotion link .*\(36009001\): Invalid product_id/);
      expect((await requests(since)).filter((r) => r.path.includes('/promotion_link/')).map((r) => `${r.path} ${r.status}`)).toEqual([`/affiliate_seller/202405/products/${encodeURIComponent(id)}/promotion_link/generate 400`]);
    }
    for (const id of ['', '.', '..']) {
      const since = await lastSeq();
      const err = await caught(h.adapter.pin(remote, { ...PIN, platformProductId: id }, buildOpContext(`dot-${id.length}`)));
      expect(err).toBeInstanceOf(PinRefusedError);
      expect((err as PinRefusedError).reason).toBe('product_id_unsendable');
      expect(await requests(since)).toEqual([]);
    }
    const tried = ['LIP OIL 01', 'a/b', '?x=1', '#h', '%2F', '\u{1F389}', '', '.', '..'];
    expect((await effects()).filter((e) => e.type === 'product.pinned' && tried.includes(String(e.productId)))).toEqual([]);
  });
});

/**
 * Review of f08ff3f: two worker processes refreshing one target's access token at once, on a platform
 * that rotates refresh tokens (the Whatnot simulator with rotateRefreshTokens). Both read the same
 * refresh token; the first refresh rotates it, the second is invalid_grant — and that process deleted
 * the cached record, the live rotated refresh token with it: the target lost its authorisation for
 * good (the credentials' refresh token is dead too). Now the record goes only while it still holds the
 * refresh token that was refused; otherwise the refresh is tried once more with the live one.
 * Tokens live in real Redis (RedisTokenStore), one store per "process".
 */
import { randomBytes } from 'node:crypto';
import axios from 'axios';
import { SecretBox } from '../../src/lib/crypto.js';
import { SIM_ACCOUNTS, simTargetCredentials, simWhatnotAppCredentials } from '../../src/simulators/sim.accounts.js';
import { Keys } from '../../src/store/keys.js';
import type { RedisClient } from '../../src/store/redis.js';
import { RedisTokenStore } from '../../src/store/token.repository.js';
import type { AccessToken, TokenStore } from '../../src/targets/target.adapter.js';
import { buildTiktokAdapter } from '../../src/targets/tiktok/tiktok.adapter.js';
import { buildWhatnotAdapter } from '../../src/targets/whatnot/whatnot.adapter.js';
import { buildAdapterContext, buildOpContext } from '../helpers/adapter-context.js';
import { useSimulators } from '../helpers/adapter-harness.js';
import { line, platformSim } from '../helpers/adapter-sim.js';
import { testRedisClientPerFile } from '../helpers/redis-cluster.js';

let redis: RedisClient;
testRedisClientPerFile((started) => ({ client: redis } = started));
const sim = useSimulators({ limits: { whatnot: { rotateRefreshTokens: 1 } } });
const { control, requests, lastSeq } = platformSim(() => sim.url, 'whatnot');

const keys = new Keys('race');
const box = new SecretBox(randomBytes(32).toString('base64'));
const APP = { ...simWhatnotAppCredentials('a'), webhookSecret: `whsec_${randomBytes(24).toString('base64')}` };
const TARGET = 'tgt_race';
// The simulators are reset before each test: a token cached by an earlier one is unknown to them.
beforeEach(async () => {
  await redis.del(keys.targetToken(TARGET));
});

/** A worker process's adapter for the target, its tokens in Redis; `tokens` wraps that store (a hook). */
function processAdapter(tokens: (store: TokenStore) => TokenStore = (s) => s) {
  const t = buildAdapterContext({ platform: 'whatnot', baseUrl: `${sim.url}/whatnot`, credentials: APP, targetId: TARGET, timeoutMs: 3_000 });
  t.ctx.tokens = tokens(new RedisTokenStore(redis, keys, box, TARGET));
  return { adapter: buildWhatnotAdapter(t.ctx), logs: t.logs };
}

/**
 * A store whose `nth` read waits, once it has its answer, until release(): that process's refresh reads
 * the refresh token, and another process refreshes before this one sends it.
 */
function gatedRead(nth: number) {
  let reads = 0;
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let readDone!: () => void;
  const read = new Promise<void>((r) => (readDone = r));
  const wrap = (store: TokenStore): TokenStore => ({
    get: async (): Promise<AccessToken | null> => {
      const token = await store.get();
      if (++reads === nth) {
        readDone();
        await released;
      }
      return token;
    },
    set: (t) => store.set(t),
    clear: () => store.clear(),
    expire: (t) => store.expire(t),
    dropGrant: (r) => store.dropGrant(r),
    refreshed: (next, used, from) => store.refreshed(next, used, from),
    refreshing: (ms) => store.refreshing(ms),
  });
  return { wrap, read, release };
}

test('a refresh token the other process rotated meanwhile is kept when ours is refused: one more refresh with it, the call goes through', async () => {
  const showId = ((await control('POST', '/shows', { title: 'Race breaks', account: SIM_ACCOUNTS.whatnot[0]!.sellerId })) as { externalId: string }).externalId;
  // Process B reads the cached record for its refresh (none yet: the credentials' refresh token), then
  // waits while process A refreshes with the same token and stores the rotated one.
  const gate = gatedRead(2);
  const b = processAdapter(gate.wrap);
  const a = processAdapter();

  const seq = await lastSeq();
  const bAttach = b.adapter.attachShow(showId);
  await gate.read;
  await expect(a.adapter.attachShow(showId)).resolves.toMatchObject({ externalId: showId });
  gate.release();
  await expect(bAttach).resolves.toMatchObject({ externalId: showId });
  expect((await requests(seq)).map(line)).toEqual(['POST /oauth/token 200', `GET /shows/${showId} 200`, 'POST /oauth/token 400', 'POST /oauth/token 200', `GET /shows/${showId} 200`]);

  // The record holds a live refresh token: a third process, its access token refused, refreshes with it.
  const stored = await new RedisTokenStore(redis, keys, box, TARGET).get();
  expect(stored?.refreshToken).toMatch(/^wn_sim_refresh_/);
  await control('POST', '/tokens/expire', { token: stored?.accessToken });
  await expect(processAdapter().adapter.attachShow(showId)).resolves.toMatchObject({ externalId: showId });
  for (const secret of [APP.clientSecret, APP.refreshToken, stored?.refreshToken ?? 'none']) expect(b.logs.join('\n')).not.toContain(secret);
});

test('TikTok: a refresh token refused after another process stored a live one keeps that one, and one more refresh uses it', async () => {
  const credentials = simTargetCredentials('tiktok', 'a');
  const stale = 'revoked-ROW_stale_refresh';
  await axios.post(`${sim.url}/_sim/tiktok/revocations`, { token: stale });
  const target = 'tgt_race_tt';
  const store = (): RedisTokenStore => new RedisTokenStore(redis, keys, box, target);
  await store().set({ accessToken: 'tt_expired', expiresAt: 0, refreshToken: stale });
  const gate = gatedRead(2);
  const t = buildAdapterContext({ platform: 'tiktok', baseUrl: `${sim.url}/tiktok`, credentials, targetId: target, timeoutMs: 3_000 });
  t.ctx.tokens = gate.wrap(store());
  const adapter = buildTiktokAdapter(t.ctx);
  const { externalId } = (await axios.post(`${sim.url}/_sim/tiktok/shows`, { title: 'Race live' })).data as { externalId: string };
  const remote = await adapter.attachShow(externalId);

  const pinned = adapter.pin(remote, { productId: 'p-race', title: 'Race', price: { amount: 1000, currency: 'USD' }, linkUrl: 'http://127.0.0.1:3000/l/race1', platformProductId: '1729382256910270001' }, buildOpContext('mk-race'));
  await gate.read; // it read the stale refresh token; another process stores a live one meanwhile
  await store().set({ accessToken: 'tt_other', expiresAt: 0, refreshToken: credentials.refreshToken! });
  gate.release();
  await expect(pinned).resolves.toBeDefined();
  expect((await store().get())?.refreshToken).toBe(credentials.refreshToken);
});

test("Whatnot: a refused client secret (invalid_client) leaves the rotated refresh token: with the right secret the next refresh uses it", async () => {
  // Every permanent refusal of the token endpoint deleted the record; invalid_client says nothing of the
  // refresh token, and the credentials' one had been rotated away: the target could not be fixed by
  // correcting the secret, only by the seller connecting the app again.
  const showId = ((await control('POST', '/shows', { title: 'Secret breaks', account: SIM_ACCOUNTS.whatnot[0]!.sellerId })) as { externalId: string }).externalId;
  await processAdapter().adapter.attachShow(showId);
  const rotated = (await new RedisTokenStore(redis, keys, box, TARGET).get())?.refreshToken;
  expect(rotated).toMatch(/^wn_sim_refresh_/);
  await new RedisTokenStore(redis, keys, box, TARGET).expireAccess();

  const wrong = buildAdapterContext({ platform: 'whatnot', baseUrl: `${sim.url}/whatnot`, credentials: { ...APP, clientSecret: 'not-the-secret' }, targetId: TARGET, timeoutMs: 3_000 });
  wrong.ctx.tokens = new RedisTokenStore(redis, keys, box, TARGET);
  await expect(buildWhatnotAdapter(wrong.ctx).attachShow(showId)).rejects.toMatchObject({ reason: 'invalid_client' });
  expect((await new RedisTokenStore(redis, keys, box, TARGET).get())?.refreshToken).toBe(rotated);

  const seq = await lastSeq();
  await expect(processAdapter().adapter.attachShow(showId)).resolves.toMatchObject({ externalId: showId });
  const [refresh] = await requests(seq);
  expect(new URLSearchParams(refresh?.body ?? '').get('refresh_token')).toBe(rotated);
});

test("TikTok: a refused app secret (the operator's typo, or a secret rotated in Partner Center) leaves the token record: with the right secret the next refresh uses its refresh token", async () => {
  // Every permanent refusal of TikTok's token refresh was refresh_refused and deleted the record: a
  // wrong appSecret lost the refresh token kept there (the credentials' one may be dead by then) for
  // good, though correcting the secret was all the target needed.
  const credentials = simTargetCredentials('tiktok', 'a');
  const dead = 'revoked-ROW_rotated_away';
  await axios.post(`${sim.url}/_sim/tiktok/revocations`, { token: dead });
  const target = 'tgt_secret_tt';
  const store = (): RedisTokenStore => new RedisTokenStore(redis, keys, box, target);
  // The record holds the live refresh token; the credentials' one was rotated away (dead).
  await store().set({ accessToken: 'tt_expired', expiresAt: 0, refreshToken: credentials.refreshToken! });
  const adapterWith = (appSecret: string) => {
    const t = buildAdapterContext({ platform: 'tiktok', baseUrl: `${sim.url}/tiktok`, credentials: { ...credentials, appSecret, refreshToken: dead }, targetId: target, timeoutMs: 3_000 });
    t.ctx.tokens = store();
    return { adapter: buildTiktokAdapter(t.ctx), logs: t.logs };
  };

  const wrong = adapterWith('not-the-app-secret');
  const err = (await wrong.adapter.verifyCredentials!().catch((e: unknown) => e)) as Error & { reason?: string };
  expect((await store().get())?.refreshToken).toBe(credentials.refreshToken);
  expect(err.reason).toBe('app_credentials_refused');
  expect(err.message).toContain("The shop's authorisation is kept");
  expect(err.message).toContain(`PATCH /v1/partners/`);
  for (const secret of ['not-the-app-secret', credentials.appSecret!, credentials.refreshToken!]) {
    expect(err.message).not.toContain(secret);
    expect(wrong.logs.join('\n')).not.toContain(secret);
  }

  // The right secret: the refresh sends the record's refresh token (not the dead one of the credentials).
  await expect(adapterWith(credentials.appSecret!).adapter.verifyCredentials!()).resolves.toEqual({ accountId: expect.any(String) });
  expect((await store().get())?.accessToken).not.toBe('tt_expired');

  // A refused refresh token still drops the record.
  await axios.post(`${sim.url}/_sim/tiktok/revocations`, { token: credentials.refreshToken });
  await store().expireAccess();
  const gone = (await adapterWith(credentials.appSecret!).adapter.verifyCredentials!().catch((e: unknown) => e)) as { reason?: string };
  expect(gone.reason).toBe('refresh_refused');
  expect(await store().get()).toBeNull();
});

/**
 * A store whose refresh result is written only after `between` ran (once): new credentials saved (a
 * target PATCH replacing the record) between a worker's refresh request and its store.
 */
function newGrantBeforeStore(between: () => Promise<void>) {
  let pending: (() => Promise<void>) | undefined = between;
  const run = async (): Promise<void> => {
    const p = pending;
    pending = undefined;
    if (p) await p();
  };
  return (store: TokenStore): TokenStore => ({
    get: () => store.get(),
    set: async (t) => {
      await run();
      return store.set(t);
    },
    clear: () => store.clear(),
    expire: (t) => store.expire(t),
    dropGrant: (r) => store.dropGrant(r),
    refreshed: async (next, used, from) => {
      await run();
      return store.refreshed(next, used, from);
    },
    refreshing: (ms) => store.refreshing(ms),
  });
}

test("review: a worker's refresh of the old grant, answered after new credentials were saved, keeps the new grant's record and uses its token", async () => {
  // The worker stored its refresh's result unconditionally: the target held the old grant's access
  // token (and refresh token, preferred over the credentials') although the operator had replaced the
  // credentials. Now it is stored only while the record still holds the grant it refreshed.
  const showId = ((await control('POST', '/shows', { title: 'New grant', account: SIM_ACCOUNTS.whatnot[0]!.sellerId })) as { externalId: string }).externalId;
  const store = (): RedisTokenStore => new RedisTokenStore(redis, keys, box, TARGET);
  // The old grant: another seller's (its token cannot read this seller's show).
  await store().set({ accessToken: 'wn_old_expired', expiresAt: 0, refreshToken: `rt-old-${randomBytes(8).toString('hex')}` });
  let saved: AccessToken | undefined;
  const patch = async (): Promise<void> => {
    // The PATCH's check of the new credentials (this seller's grant) and the record it keeps.
    const fresh = APP.refreshToken;
    const form = new URLSearchParams({ grant_type: 'refresh_token', client_id: APP.clientId, client_secret: APP.clientSecret, refresh_token: fresh });
    const res = await axios.post(`${sim.url}/whatnot/oauth/token`, form.toString(), { headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    const t = res.data as { access_token: string; expires_in: number; refresh_token?: string };
    saved = { accessToken: t.access_token, expiresAt: Date.now() + t.expires_in * 1000, refreshToken: t.refresh_token ?? fresh };
    await store().set(saved);
  };
  const worker = processAdapter(newGrantBeforeStore(patch));
  const seq = await lastSeq();
  await expect(worker.adapter.attachShow(showId)).resolves.toMatchObject({ externalId: showId });
  expect(saved).toBeDefined();
  expect(await store().get()).toEqual(saved);
  // The worker's call went out with the new grant's access token, not the old grant's it refreshed.
  const calls = (await requests(seq)).filter((r) => line(r) === `GET /shows/${showId} 200`);
  expect(calls.map((r) => r.headers.authorization)).toEqual([`Bearer ${saved?.accessToken}`]);

  // A refresh of the same grant (its access token expired meanwhile) is stored; so is the first token.
  await store().expireAccess();
  const again = processAdapter();
  await expect(again.adapter.attachShow(showId)).resolves.toMatchObject({ externalId: showId });
  const after = await store().get();
  expect(after?.accessToken).not.toBe(saved?.accessToken);
  expect(after?.expiresAt).toBeGreaterThan(Date.now());
  expect(after?.refreshToken).not.toBe(saved?.refreshToken); // rotated by that refresh, and kept
});

test("TikTok: a refresh of the old grant answered after new credentials were saved keeps the new grant's record and uses its token", async () => {
  const credentials = simTargetCredentials('tiktok', 'a');
  const target = 'tgt_new_grant_tt';
  const store = (): RedisTokenStore => new RedisTokenStore(redis, keys, box, target);
  await store().set({ accessToken: 'tt_old_expired', expiresAt: 0, refreshToken: `old-${randomBytes(8).toString('hex')}` });
  let saved: AccessToken | undefined;
  const patch = async (): Promise<void> => {
    const q = new URLSearchParams({ app_key: credentials.appKey!, app_secret: credentials.appSecret!, refresh_token: credentials.refreshToken!, grant_type: 'refresh_token', shop_cipher: credentials.shopCipher! });
    const env = (await axios.get(`${sim.url}/tiktok/api/v2/token/refresh?${q.toString()}`)).data as { data: { access_token: string; access_token_expire_in: number; refresh_token: string } };
    saved = { accessToken: env.data.access_token, expiresAt: env.data.access_token_expire_in * 1000, refreshToken: env.data.refresh_token };
    await store().set(saved);
  };
  const t = buildAdapterContext({ platform: 'tiktok', baseUrl: `${sim.url}/tiktok`, credentials, targetId: target, timeoutMs: 3_000 });
  t.ctx.tokens = newGrantBeforeStore(patch)(store());
  const since = ((await axios.get(`${sim.url}/_sim/tiktok/requests?since=0`)).data as { seq: number }[]).at(-1)?.seq ?? 0;
  // The check's call after its refresh (Get Authorized Shops) goes out with the token the refresh gave.
  await expect(buildTiktokAdapter(t.ctx).verifyCredentials!()).resolves.toEqual({ accountId: expect.any(String) });
  expect(saved).toBeDefined();
  expect(await store().get()).toEqual(saved);
  const sent = ((await axios.get(`${sim.url}/_sim/tiktok/requests?since=${since}`)).data as { path: string; headers: Record<string, unknown> }[])
    .filter((r) => !r.path.includes('/token/'))
    .map((r) => r.headers['x-tts-access-token']);
  expect(sent.length).toBeGreaterThan(0);
  expect(new Set(sent)).toEqual(new Set([saved?.accessToken]));
});

test("review: a refresh refused while another process's refresh, answered (it rotated the token), is not stored yet waits for it and uses the refresh token it stores", async () => {
  // Between process A's refresh answer (Whatnot rotated the refresh token) and its store, process B's
  // refresh with the same token was refused: B dropped the record and failed its job as authorisation
  // lost. Now A's refresh is announced until stored (refreshing), and B's dropGrant waits for it.
  const showId = ((await control('POST', '/shows', { title: 'Held store', account: SIM_ACCOUNTS.whatnot[0]!.sellerId })) as { externalId: string }).externalId;
  let answered!: () => void;
  const aAnswered = new Promise<void>((r) => (answered = r));
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const a = processAdapter(
    newGrantBeforeStore(async () => {
      answered();
      await released;
    }),
  );
  const seq = await lastSeq();
  const aAttach = a.adapter.attachShow(showId);
  await aAnswered;
  const bAttach = processAdapter().adapter.attachShow(showId);
  // B's refresh with the token A rotated away is refused; only then is A's store let through.
  while (!(await requests(seq)).some((r) => line(r) === 'POST /oauth/token 400')) await new Promise((r) => setTimeout(r, 20));
  release();
  await expect(aAttach).resolves.toMatchObject({ externalId: showId });
  await expect(bAttach).resolves.toMatchObject({ externalId: showId });
  const stored = await new RedisTokenStore(redis, keys, box, TARGET).get();
  expect(stored?.refreshToken).toMatch(/^wn_sim_refresh_/);
  // B's second refresh sent the refresh token A stored.
  const refreshes = (await requests(seq)).filter((r) => r.path.endsWith('/oauth/token'));
  expect(refreshes.map((r) => r.status)).toEqual([200, 400, 200]);
  expect(new URLSearchParams(refreshes[2]?.body ?? '').get('refresh_token')).not.toBe(APP.refreshToken);
});

/**
 * The redaction of a target's secrets from the errors its adapter throws (src/targets/instrumented.ts
 * openAdapter, src/lib/redact.ts): credential secrets and every token that went through the token
 * store (the last RECENT_TOKENS of them), not the fields that name the account; the error keeps its class
 * and fields; handleWebhook, the order report and Whatnot's own log line too. The end-to-end case
 * (a platform echoing the token into lastError, mirror.updated and a 422) is
 * test/e2e/platform-error.redaction.test.ts.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { redactSecrets } from '../../src/lib/redact.js';
import { openAdapter, RECENT_TOKENS } from '../../src/targets/instrumented.js';
import type { AdapterFactory, PlatformOrder, TargetAdapter } from '../../src/targets/target.adapter.js';
import { PermanentError } from '../../src/targets/target.errors.js';
import { createWhatnotAdapter } from '../../src/targets/whatnot/whatnot.adapter.js';
import { buildAdapterContext, caught } from '../helpers/adapter-context.js';

test('redactSecrets: every occurrence, percent-encoded too, a longer secret whole; values under 4 characters left alone', () => {
  expect(redactSecrets('a=abc/def+ghi12 b=abc%2Fdef%2Bghi12 c=abc', ['abc/def+ghi12', 'abc'])).toBe('a=[redacted] b=[redacted] c=abc');
  expect(redactSecrets('tok 0123456789abcdef', ['01234567', '0123456789abcdef'])).toBe('tok [redacted]');
});

test("an adapter's error without the credentials' secrets and the stored tokens, with the account's id, as the same class", async () => {
  const { ctx, tokens } = buildAdapterContext({ platform: 'youtube', baseUrl: undefined, credentials: { clientId: 'client-1234.apps', clientSecret: 'GOCSPX-secret-value', refreshToken: '1//refresh-given' } });
  tokens.token = { accessToken: 'ya29.access-from-store', refreshToken: '1//refresh-rotated', expiresAt: Date.now() + 60_000 };
  const thrown: PermanentError[] = [];
  const factory: AdapterFactory = (c) =>
    ({
      platform: 'youtube',
      async verifyCredentials() {
        const t = await c.tokens.get();
        const err = new PermanentError(`refused client-1234.apps: secret GOCSPX-secret-value, refresh ${t?.refreshToken} (given 1//refresh-given), access ${t?.accessToken}`, 'invalid_grant');
        thrown.push(err);
        throw err;
      },
    }) as unknown as TargetAdapter;
  const err = (await caught(openAdapter(factory, ctx).verifyCredentials!())) as PermanentError;
  expect(err).toBeInstanceOf(PermanentError);
  expect(err.reason).toBe('invalid_grant');
  expect(err.message).toBe('refused client-1234.apps: secret [redacted], refresh [redacted] (given [redacted]), access [redacted]');
  for (const s of ['GOCSPX-secret-value', '1//refresh-given', '1//refresh-rotated', 'ya29.access-from-store']) expect(err.stack).not.toContain(s);
  // The adapter's own error (it may be shared: a refresh's, with every caller that waited on it) is not changed.
  expect(thrown[0]!.message).toContain('GOCSPX-secret-value');
});

test('handleWebhook (TikTok: reads the order from the platform) throws its errors redacted too', async () => {
  const { ctx, tokens } = buildAdapterContext({ platform: 'tiktok', baseUrl: undefined, credentials: { appKey: 'app-key-1', appSecret: 'app-secret-value', refreshToken: 'refresh-token-value', shopCipher: 'cipher' } });
  tokens.token = { accessToken: 'access-token-from-store', refreshToken: 'refresh-token-rotated', expiresAt: Date.now() + 60_000 };
  const factory: AdapterFactory = (c) =>
    ({
      platform: 'tiktok',
      async handleWebhook() {
        const t = await c.tokens.get();
        throw new PermanentError(`order read refused: access_token ${t?.accessToken} invalid (app app-key-1)`, 'invalid_token');
      },
    }) as unknown as TargetAdapter;
  const err = (await caught(openAdapter(factory, ctx).handleWebhook!({}, Buffer.alloc(0)))) as PermanentError;
  expect(err).toBeInstanceOf(PermanentError);
  expect(err.message).toBe('order read refused: access_token [redacted] invalid (app app-key-1)');
});

test('a cached adapter redacts the last RECENT_TOKENS tokens it saw, not every token since it was built', async () => {
  const { ctx } = buildAdapterContext({ platform: 'youtube', baseUrl: undefined, credentials: { clientId: 'c', clientSecret: 'client-secret-x', refreshToken: 'refresh-token-x' } });
  const token = (i: number): string => `ya29.rotated-access-token-${String(i).padStart(5, '0')}`;
  let n = 0;
  let quoteAll = false;
  const factory: AdapterFactory = (c) =>
    ({
      platform: 'youtube',
      async verifyCredentials() {
        // Every call a refresh: a new access token through the store.
        await c.tokens.set({ accessToken: token(n), expiresAt: Date.now() + 3_600_000 });
        n++;
        throw new PermanentError(quoteAll ? Array.from({ length: n }, (_, i) => token(i)).join(' ') : 'refused', 'x');
      },
    }) as unknown as TargetAdapter;
  const adapter = openAdapter(factory, ctx);
  for (let i = 0; i < 3_000; i++) await caught(adapter.verifyCredentials!());
  quoteAll = true;
  const err = (await caught(adapter.verifyCredentials!())) as Error;
  // Of the 3,001 tokens it saw, the latest RECENT_TOKENS are redacted; the ones before are no longer held.
  const kept = Array.from({ length: n - RECENT_TOKENS }, (_, i) => token(i));
  expect(err.message).toBe([...kept, ...Array<string>(RECENT_TOKENS).fill('[redacted]')].join(' '));
});

test('creatorUsername (a public handle, not a secret) is kept in error texts', async () => {
  const { ctx } = buildAdapterContext({ platform: 'tiktok', baseUrl: undefined, credentials: { appKey: 'k', appSecret: 'app-secret-value', refreshToken: 'refresh-token-value', shopCipher: 'cipher', creatorUsername: 'products' } });
  const factory: AdapterFactory = () =>
    ({
      platform: 'tiktok',
      async pin() {
        throw new PermanentError('TikTok refused: 2 products not in the showcase', 'x');
      },
    }) as unknown as TargetAdapter;
  const err = (await caught(openAdapter(factory, ctx).pin({} as never, {} as never, {} as never))) as Error;
  expect(err.message).toBe('TikTok refused: 2 products not in the showcase');
});

test('secrets of 4 to 7 characters (the schemas allow them) are redacted; shorter values are not looked for', async () => {
  const refusing = (message: string): AdapterFactory => () =>
    ({
      platform: 'bambuser',
      async verifyCredentials() {
        throw new PermanentError(message, 'x');
      },
    }) as unknown as TargetAdapter;
  const bambuser = buildAdapterContext({ platform: 'bambuser', baseUrl: undefined, credentials: { apiKey: 'k3y9', webhookHeaderValue: 'hv-5678', region: 'eu' } });
  expect(((await caught(openAdapter(refusing('key k3y9, header hv-5678 (eu)'), bambuser.ctx).verifyCredentials!())) as Error).message).toBe('key [redacted], header [redacted] (eu)');
  const whatnot = buildAdapterContext({ platform: 'whatnot', baseUrl: undefined, credentials: { accessToken: 'pat-12' } });
  expect(((await caught(openAdapter(refusing('bearer pat-12 refused'), whatnot.ctx).verifyCredentials!())) as Error).message).toBe('bearer [redacted] refused');
  const tiny = buildAdapterContext({ platform: 'bambuser', baseUrl: undefined, credentials: { apiKey: 'abc' } });
  expect(((await caught(openAdapter(refusing('abc refused'), tiny.ctx).verifyCredentials!())) as Error).message).toBe('abc refused');
});

test("the order report's errors (reconciliation's summary.error) are redacted too", async () => {
  const { ctx } = buildAdapterContext({ platform: 'bambuser', baseUrl: undefined, credentials: { apiKey: 'bambuser-api-key-0123' } });
  const factory: AdapterFactory = () =>
    ({
      platform: 'bambuser',
      async *orderPages(): AsyncGenerator<PlatformOrder[]> {
        yield [];
        throw new PermanentError('page 2 refused: key bambuser-api-key-0123 unknown', 'x');
      },
    }) as unknown as TargetAdapter;
  const read = async (): Promise<void> => {
    for await (const page of openAdapter(factory, ctx).orderPages!(new Date(0), new Date())) void page;
  };
  expect(((await caught(read())) as Error).message).toBe('page 2 refused: key [redacted] unknown');
});

test("Whatnot's own log line for an order's unreadable items (a webhook) carries no token", async () => {
  const PAT = 'wn-pat-0123456789abcdef';
  // Every request refused, quoting the bearer token it carried.
  const server = createServer((req, res) => {
    req.resume();
    res.writeHead(403, { 'content-type': 'application/problem+json' });
    res.end(JSON.stringify({ title: 'Forbidden', detail: `token ${(req.headers.authorization ?? '').replace(/^Bearer /, '')} lacks read:orders` }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const key = randomBytes(24);
    const { ctx, logs } = buildAdapterContext({ platform: 'whatnot', baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, credentials: { accessToken: PAT, webhookSecret: `whsec_${key.toString('base64')}` } });
    const order = { id: 'wn-order-1', show_id: 'show-1', status: 'completed', created_at: new Date().toISOString(), amounts: { total: { amount: '12.00', currency: 'USD' } } };
    const raw = Buffer.from(JSON.stringify({ type: 'orders.created', timestamp: new Date().toISOString(), data: order }));
    const ts = String(Math.floor(Date.now() / 1000));
    const signature = `v1,${createHmac('sha256', key).update(`msg_1.${ts}.`).update(raw).digest('base64')}`;
    const orders = await openAdapter(createWhatnotAdapter, ctx).handleWebhook!({ 'webhook-id': 'msg_1', 'webhook-timestamp': ts, 'webhook-signature': signature }, raw);
    expect(orders).toEqual([expect.objectContaining({ orderId: 'wn-order-1', productId: undefined })]);
    const line = logs.find((l) => l.includes('order items unreadable'));
    expect(line).toContain('token [redacted] lacks read:orders');
    expect(logs.join('')).not.toContain(PAT);
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});

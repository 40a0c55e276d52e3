/**
 * The redaction of a target's secrets from the errors its adapter throws (src/targets/instrumented.ts
 * openAdapter, src/lib/redact.ts): credential secrets and every token that went through the token
 * store, not the fields that name the account; the error keeps its class and fields. The end-to-end case
 * (a platform echoing the token into lastError, mirror.updated and a 422) is
 * test/e2e/platform-error.redaction.test.ts.
 */
import { redactSecrets } from '../../src/lib/redact.js';
import { openAdapter } from '../../src/targets/instrumented.js';
import type { AdapterFactory, TargetAdapter } from '../../src/targets/target.adapter.js';
import { PermanentError } from '../../src/targets/target.errors.js';
import { buildAdapterContext, caught } from '../helpers/adapter-context.js';

test('redactSecrets: every occurrence, percent-encoded too, a longer secret whole; short values left alone', () => {
  expect(redactSecrets('a=abc/def+ghi12 b=abc%2Fdef%2Bghi12 c=short', ['abc/def+ghi12', 'short'])).toBe('a=[redacted] b=[redacted] c=short');
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

import { limiterId } from '../../src/targets/target.registry.js';

test('targets on one platform account share a limiter; different accounts do not', () => {
  const a = limiterId('bambuser', { apiKey: 'key-1', webhookHeaderValue: 'x' }, 'target-a');
  const b = limiterId('bambuser', { apiKey: 'key-1' }, 'target-b');
  const c = limiterId('bambuser', { apiKey: 'key-2' }, 'target-c');
  expect(a).toBe(b);
  expect(a).not.toBe(c);
  expect(a).not.toContain('key-1'); // the credential never appears in a Redis key
  // YouTube quota is per OAuth client (Google Cloud project), whatever the channel's refresh token.
  expect(limiterId('youtube', { clientId: 'c1', refreshToken: 'r1' }, 't1')).toBe(limiterId('youtube', { clientId: 'c1', refreshToken: 'r2' }, 't2'));
  // Without the identifying credential the target is its own account.
  expect(limiterId('facebook', { pageAccessToken: 'tok' }, 't9')).toBe('t9');
});

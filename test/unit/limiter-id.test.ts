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
  // Whatnot: per seller and app. An app's grant (client id + the seller's refresh token) names it,
  // whatever access token the credentials also carry; a personal access token names its seller.
  const app = { clientId: 'wn-app', clientSecret: 's', refreshToken: 'r-seller-1' };
  expect(limiterId('whatnot', app, 't1')).toBe(limiterId('whatnot', { ...app, accessToken: 'wn_access_tk_x' }, 't2'));
  expect(limiterId('whatnot', app, 't1')).not.toBe(limiterId('whatnot', { ...app, refreshToken: 'r-seller-2' }, 't3'));
  expect(limiterId('whatnot', { accessToken: 'wn_pat_tk_1' }, 't4')).toBe(limiterId('whatnot', { accessToken: 'wn_pat_tk_1' }, 't5'));
});

/**
 * Whatnot's token URL sits beside the API's version (`…/seller-api/rest/oauth/token`): a target whose
 * baseUrl names the version (`…/rest/v2`) had its refresh posted to `…/rest/v2/oauth/token`.
 */
import { whatnotOAuthBase } from '../../src/targets/whatnot/whatnot.client.js';

test('the OAuth base of a versioned API base is beside the version', () => {
  expect(whatnotOAuthBase('https://api.whatnot.com/seller-api/rest/v2')).toBe('https://api.whatnot.com/seller-api/rest');
  expect(whatnotOAuthBase('https://api.whatnot.com/seller-api/rest/v2/')).toBe('https://api.whatnot.com/seller-api/rest');
  expect(whatnotOAuthBase(undefined)).toBe('https://api.whatnot.com/seller-api/rest');
  // The simulator serves both under one base without a version.
  expect(whatnotOAuthBase('http://127.0.0.1:4000/whatnot')).toBe('http://127.0.0.1:4000/whatnot');
});

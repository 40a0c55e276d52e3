/**
 * platformJson's query string (src/targets/platform-http.ts `withQuery`) is the one axios built from
 * `params` before the YouTube client's API calls left axios: same parameters left out, same encoding.
 */
import fc from 'fast-check';
import axios from 'axios';
import { withQuery } from '../../src/targets/platform-http.js';

const value = fc.oneof(fc.string(), fc.string({ unit: 'grapheme' }), fc.integer(), fc.boolean(), fc.constant(undefined), fc.constant(null));

// Keys are the API's parameter names (identifiers); values are anything.
test('withQuery serialises like axios params (keys, values, undefined/null left out)', () => {
  fc.assert(
    fc.property(fc.dictionary(fc.oneof(fc.stringMatching(/^[A-Za-z][A-Za-z0-9_]{0,12}$/), fc.constantFrom('part', 'id', 'pageToken', 'maxResults')), value), fc.constantFrom('http://h/y/v3/liveChat/messages', 'https://www.googleapis.com/youtube/v3/x?fixed=1'), (query, url) => {
      expect(withQuery(url, query)).toBe(axios.getUri({ url, params: query }));
    }),
    { numRuns: 500 },
  );
});

test('withQuery leaves a URL without parameters as it is', () => {
  expect(withQuery('http://h/p', { a: undefined })).toBe('http://h/p');
  expect(withQuery('http://h/p', { part: 'snippet', maxResults: 2000, pageToken: undefined })).toBe('http://h/p?part=snippet&maxResults=2000');
});

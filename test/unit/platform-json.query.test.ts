/**
 * platformJson's query string (src/targets/platform-http.ts `withQuery`) is the one axios built from
 * `params` before the YouTube client's API calls left axios: same parameters left out, same encoding.
 */
import fc from 'fast-check';
import axios from 'axios';
import { urlToHttpOptions } from 'node:url';
import { requestTarget, withQuery } from '../../src/targets/platform-http.js';

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

// platformJson gives http.request the fields of urlToHttpOptions(new URL(url)) it reads, kept per URL
// text (requestTarget), instead of the URL itself: the same request target for every kind of URL.
test('requestTarget has the request fields of urlToHttpOptions, the same every time', () => {
  for (const url of [
    'http://127.0.0.1:40123/youtube/v3/liveChat/messages?part=snippet',
    'https://www.googleapis.com/youtube/v3/liveBroadcasts?part=id%2Csnippet&mine=true',
    'https://www.googleapis.com/',
    'http://[::1]:8080/a/b?c=d#frag',
    'https://user:p%40ss@example.com:8443/x',
    'http://example.com',
  ]) {
    const o = urlToHttpOptions(new URL(url));
    const t = requestTarget(url);
    expect(t).toEqual({ protocol: o.protocol, hostname: o.hostname, port: o.port === undefined ? undefined : Number(o.port), path: o.path, auth: o.auth });
    expect(requestTarget(url)).toBe(t);
  }
  expect(() => requestTarget('not a url')).toThrow();
});

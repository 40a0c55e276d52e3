/**
 * Every problem+json answer names its kind the same way, 5xx included (they were `about:blank`), and
 * carries its status's title: the router's 414 for an over-long path segment said title "Error", type
 * …/problems/error (found probing `npm start`, 2026-12-02).
 */
import { problem } from '../../src/api/plugins/errors.plugin.js';

test.each([
  [400, 'bad-request'],
  [404, 'not-found'],
  [500, 'internal-server-error'],
  [503, 'service-unavailable'],
  [414, 'uri-too-long'],
  [410, 'gone'],
])('a %i problem has type https://syndicast.dev/problems/%s', (status, slug) => {
  expect(problem(status, 'x')).toMatchObject({ status, type: `https://syndicast.dev/problems/${slug}` });
});

test.each([
  [414, 'URI Too Long'],
  [413, 'Content Too Large'],
  [431, 'Request Header Fields Too Large'],
])('a %i problem has title %s', (status, title) => {
  expect(problem(status).title).toBe(title);
});

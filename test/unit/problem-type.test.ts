/** Every problem+json answer names its kind the same way, 5xx included (they were `about:blank`). */
import { problem } from '../../src/api/plugins/errors.plugin.js';

test.each([
  [400, 'bad-request'],
  [404, 'not-found'],
  [500, 'internal-server-error'],
  [503, 'service-unavailable'],
])('a %i problem has type https://syndicast.dev/problems/%s', (status, slug) => {
  expect(problem(status, 'x')).toMatchObject({ status, type: `https://syndicast.dev/problems/${slug}` });
});

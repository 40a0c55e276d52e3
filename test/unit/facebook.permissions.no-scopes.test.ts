import pino from 'pino';
import type { FacebookClient, GraphCall } from '../../src/targets/facebook/facebook.client.js';
import { createPermissionReader, REQUIRED_PAGE_PERMISSIONS } from '../../src/targets/facebook/facebook.permissions.js';

// Graph documents debug_token's `scopes` as always present, and the simulator always sends it, so an
// answer without it is built here: a client answering one debug_token body, parsed by the real schema.
function clientAnswering(body: unknown): FacebookClient {
  return {
    credentials: { pageId: '1001', pageAccessToken: 'EAAG-test' },
    version: 'v27.0',
    call: <T>(req: GraphCall<T>): Promise<T> => Promise.resolve(req.schema.parse(body)),
    reserve: () => Promise.resolve(),
  } as FacebookClient;
}

const log = pino({ level: 'silent' });

test('a debug_token answer without scopes is no verdict: nothing is reported missing', async () => {
  const reader = createPermissionReader(clientAnswering({ data: { is_valid: true, app_id: '1', type: 'PAGE' } }), log);
  expect((await reader.get()).missing).toEqual([]);
});

test('a debug_token answer with scopes still names what is missing', async () => {
  const reader = createPermissionReader(clientAnswering({ data: { is_valid: true, app_id: '1', type: 'PAGE', scopes: ['pages_manage_posts'] } }), log);
  expect((await reader.get()).missing).toEqual(REQUIRED_PAGE_PERMISSIONS.filter((p) => p !== 'pages_manage_posts'));
});

/**
 * The Facebook simulator's debug_token over real HTTP: it must judge a token as Graph does, or an
 * adapter that trusts its verdict passes here and fails in production.
 */
import { DEFAULT_FACEBOOK_GRAPH_VERSION } from '../../src/config/config.js';
import { SIM_ACCOUNTS } from '../../src/simulators/sim.accounts.js';
import { startSimulators, type StartedSimulators } from '../../src/simulators/sim.server.js';

const A = SIM_ACCOUNTS.facebook[0]!;
const B = SIM_ACCOUNTS.facebook[1]!;
const GV = DEFAULT_FACEBOOK_GRAPH_VERSION;

let srv: StartedSimulators;
beforeAll(async () => {
  srv = await startSimulators({ port: 0 });
});
afterAll(async () => {
  await srv.close();
});
beforeEach(async () => {
  await fetch(`${srv.url}/_sim/reset`, { method: 'POST' });
});

async function debugToken(input: string, asToken = A.pageAccessToken): Promise<{ status: number; data: Record<string, unknown> }> {
  const res = await fetch(`${srv.url}/facebook/${GV}/debug_token?input_token=${encodeURIComponent(input)}`, { headers: { authorization: `Bearer ${asToken}` } });
  return { status: res.status, data: ((await res.json()) as { data: Record<string, unknown> }).data };
}

test('debug_token says a revoked Page token is not valid (with Graph error 190), as Graph does; the token itself is refused', async () => {
  expect(await debugToken(B.pageAccessToken)).toMatchObject({ status: 200, data: { is_valid: true } });

  const revoke = await fetch(`${srv.url}/_sim/facebook/revocations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: B.pageAccessToken }) });
  expect(revoke.status).toBe(204);

  const dbg = await debugToken(B.pageAccessToken);
  expect(dbg.status).toBe(200);
  expect(dbg.data).toMatchObject({ is_valid: false, scopes: [], error: { code: 190 } });
  // and the token is refused when used (code 190), before and after the debug_token call alike
  const used = await fetch(`${srv.url}/facebook/${GV}/${B.pageId}/live_videos`, { headers: { authorization: `Bearer ${B.pageAccessToken}` } });
  expect(((await used.json()) as { error: { code: number } }).error.code).toBe(190);
  // another Page's token is untouched
  expect((await debugToken(A.pageAccessToken)).data).toMatchObject({ is_valid: true });
});

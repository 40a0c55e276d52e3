/**
 * Helpers of the target PATCH grant tests (targets.patch-grant-*.test.ts): a Whatnot app's credentials,
 * the target's token record, whether Whatnot still refreshes from it, and the simulator, proxy and service.
 */
import { randomBytes } from 'node:crypto';
import { RedisTokenStore } from '../../src/store/token.repository.js';
import type { AccessToken } from '../../src/targets/target.adapter.js';
import { startLateProxy, type LateProxy } from './late-proxy.js';
import type { TestRedis } from './redis-server.js';
import { createPartner, startService, type TestService } from './service.js';
import { startSim, type TestSim } from './sim.js';

/** The target's token record (null: none). */
export const tokenRecord = (svc: TestService, targetId: string): Promise<AccessToken | null> => new RedisTokenStore(svc.rt.redis, svc.rt.keys, svc.rt.box, targetId).current();
/**
 * What the record holds after new credentials were saved without a token (?verify=false): no token, and
 * the save's name (RedisTokenStore.newGrant), so a refresh of the old grant still under way is not stored.
 */
export const NO_TOKEN_RECORD = { accessToken: '', expiresAt: 0, grant: expect.any(String) as unknown as string };
export const whsec = (): string => `whsec_${randomBytes(24).toString('base64')}`;
/** A Whatnot app's credentials (its own client and refresh token). */
export const whatnotApp = (name: string): Record<string, string> => ({ clientId: `app-${name}-${randomBytes(4).toString('hex')}`, clientSecret: `secret-${name}`, refreshToken: `rt-${randomBytes(12).toString('hex')}`, webhookSecret: whsec() });

/** Whatnot's answer to a refresh with the record's refresh token and the credentials' app (200: the grant goes on, a worker's next refresh works). */
export async function refreshStatus(whatnotBase: string, credentials: Record<string, string>, token: AccessToken): Promise<number> {
  return (await refreshRequest(whatnotBase, credentials, token)).status;
}

/** A worker's refresh (with the record's refresh token and the credentials' app), by hand: the token Whatnot gives (null: refused). */
export async function refreshToken(whatnotBase: string, credentials: Record<string, string>, token: AccessToken): Promise<AccessToken | null> {
  const r = await refreshRequest(whatnotBase, credentials, token);
  if (r.status !== 200) return null;
  const t = (await r.json()) as { access_token: string; refresh_token?: string; expires_in: number };
  return { accessToken: t.access_token, expiresAt: Date.now() + t.expires_in * 1000, ...(t.refresh_token ? { refreshToken: t.refresh_token } : {}) };
}

function refreshRequest(whatnotBase: string, credentials: Record<string, string>, token: AccessToken): Promise<Response> {
  const body = new URLSearchParams({ grant_type: 'refresh_token', client_id: credentials.clientId!, client_secret: credentials.clientSecret!, refresh_token: token.refreshToken! });
  return fetch(`${whatnotBase}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
}

/** The Whatnot simulator rotating refresh tokens, a late proxy in front of it (the targets' baseUrl), and the service. */
export interface WhatnotGrantRig {
  svc: TestService;
  sim: TestSim;
  proxy: LateProxy;
  close(): Promise<void>;
}

/** `redis`: the service's (one redis-server or a cluster the caller started and stops); else its own. */
export async function startWhatnotGrantRig(platformTimeoutMs: number, redis?: TestRedis): Promise<WhatnotGrantRig> {
  const sim = await startSim();
  await sim.control('PUT', '/_sim/whatnot/limits', { rotateRefreshTokens: 1, requestsPerWindow: null });
  const proxy = await startLateProxy(sim.base('whatnot'));
  const svc = await startService({ env: { PLATFORM_TIMEOUT_MS: String(platformTimeoutMs) }, ...(redis ? { redis } : {}) });
  return {
    svc,
    sim,
    proxy,
    close: async () => {
      await svc.close();
      await proxy.close();
      await sim.close();
    },
  };
}

/**
 * The rig for a whole test file (started in beforeAll, with partner `partnerId` if given; closed in
 * afterAll). Its parts are read in the tests, once it has started.
 */
export function whatnotGrantRigPerFile(platformTimeoutMs: number, partnerId?: string): WhatnotGrantRig {
  let rig: WhatnotGrantRig | undefined;
  beforeAll(async () => {
    rig = await startWhatnotGrantRig(platformTimeoutMs);
    if (partnerId) await createPartner(rig.svc, partnerId);
  }, 60_000);
  afterAll(() => rig?.close());
  const started = (): WhatnotGrantRig => {
    if (!rig) throw new Error('the Whatnot grant rig has not started (read it in a test)');
    return rig;
  };
  return {
    get svc() {
      return started().svc;
    },
    get sim() {
      return started().sim;
    },
    get proxy() {
      return started().proxy;
    },
    close: () => started().close(),
  };
}

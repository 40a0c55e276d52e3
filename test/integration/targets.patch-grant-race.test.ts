/**
 * Two PATCHes of one target's credentials that run together. Each writes the target record (the
 * credentials) and then the token record, apart (two slots). PATCH A sends the app's credentials again
 * (a new webhookSecret: the same grant, its check refreshes from the token record) and its check is
 * held at Whatnot's token endpoint; PATCH B sends another app's grant and runs meanwhile. B's writes
 * landed first, then A's target write over them, and A's token write kept B's record (another grant's,
 * which it must not overwrite): the target was left with A's credentials and B's token record, whose
 * refresh token Whatnot refuses with A's app (invalid_grant), the target's authorisation lost. Now such
 * PATCHes of a target run one at a time (a grant lock in the target's slot): B waits for A and starts
 * from what A saved, and the credentials and the token record left are one PATCH's. Real service, real
 * Redis, the Whatnot simulator (rotating refresh tokens) over HTTP behind a proxy that holds A's refresh.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { AccessToken } from '../../src/targets/target.adapter.js';
import type { LateProxy } from '../helpers/late-proxy.js';
import { createPartner, type TestService } from '../helpers/service.js';
import type { TestSim } from '../helpers/sim.js';
import { refreshStatus, startWhatnotGrantRig, tokenRecord, whatnotApp, whsec, type WhatnotGrantRig } from '../helpers/whatnot-grant.js';

/** How long A's refresh may be held at most before B has answered (see below). */
const HOLD_MS = 8_000;
const PLATFORM_TIMEOUT_MS = 3 * HOLD_MS;

let svc: TestService;
let sim: TestSim;
let proxy: LateProxy;
let rig: WhatnotGrantRig | undefined;
beforeAll(async () => {
  // A's check is held at the proxy for up to HOLD_MS: within one platform call's timeout.
  rig = await startWhatnotGrantRig(PLATFORM_TIMEOUT_MS);
  ({ svc, sim, proxy } = rig);
}, 60_000);
afterAll(() => rig?.close());

const record = (targetId: string): Promise<AccessToken | null> => tokenRecord(svc, targetId);
const app = whatnotApp;
const refreshes = (credentials: Record<string, string>, token: AccessToken): Promise<number> => refreshStatus(sim.base('whatnot'), credentials, token);

test("two PATCHes of a target's credentials that run together leave one PATCH's credentials and token record, not a mix", async () => {
  await createPartner(svc, 'pr');
  const original = app('x');
  const created = await svc.api('/v1/partners/pr/targets', { json: { id: 'wr', platform: 'whatnot', name: 'Whatnot app', credentials: original, baseUrl: proxy.url, commissionRateBps: 800 } });
  expect(created.status).toBe(201);
  expect((await record('wr'))?.refreshToken).toMatch(/^wn_sim_refresh_/);

  // A: the same grant again (a new webhookSecret). Its check must refresh (the access token refused),
  // from the record's refresh token; that refresh is held at the proxy.
  await sim.control('POST', '/_sim/whatnot/tokens/expire', {});
  const gate = proxy.gateNext((method, path) => method === 'POST' && path.endsWith('/oauth/token'));
  const a = { ...original, webhookSecret: whsec() };
  const patchA = svc.api('/v1/partners/pr/targets/wr', { method: 'PATCH', json: { credentials: a } });
  await gate.arrived;

  // B: another app's grant, while A's check is held.
  const b = app('y');
  const patchB = svc.api('/v1/partners/pr/targets/wr', { method: 'PATCH', json: { credentials: b } });
  // A's refresh goes on once B has answered (how the writes interleaved), or, as B waits for A now,
  // once B has had far longer than its own check and writes take (a few local round trips, even on a
  // loaded machine): well inside A's timeout, and B would wait 6 × PLATFORM_TIMEOUT_MS + 15 s.
  await Promise.race([patchB, sleep(HOLD_MS)]);
  gate.release();
  const [ra, rb] = await Promise.all([patchA, patchB]);
  expect([ra.status, rb.status]).toEqual([200, 200]);

  // The credentials left are one PATCH's, and the token record is of that PATCH's grant: Whatnot
  // refreshes it with that app (a mix: invalid_grant, the seller's refresh token is another app's).
  const target = await svc.rt.partners.getTarget('pr', 'wr');
  const credentials = svc.rt.partners.openCredentials(target!);
  expect([a, b]).toContainEqual(credentials);
  const token = await record('wr');
  expect(token?.refreshToken).toMatch(/^wn_sim_refresh_/);
  expect(await refreshes(credentials, token!)).toBe(200);
  // B waited for A and ran after it: B's credentials are the last word.
  expect(credentials).toEqual(b);
}, 60_000);

/** One target per platform on the simulators, and the operator steps some platforms need. */
import { randomBytes, randomUUID } from 'node:crypto';
import { signatureHeader } from '../../src/sources/signature.js';
import { simTargetCredentials, simWhatnotAppCredentials } from '../../src/simulators/sim.accounts.js';
import type { Platform } from '../../src/targets/target.adapter.js';
import { createPartner, startService, waitFor, type TestService, type TestServiceOptions } from './service.js';
import { startSim, type TestSim } from './sim.js';

/**
 * Credentials of each simulator's seeded account a (src/simulators/sim.accounts.ts; the simulators
 * accept a credential only for its own account), plus the webhook secrets Syndicast keeps per target.
 */
export const CREDENTIALS: Record<Platform, Record<string, string>> = {
  youtube: simTargetCredentials('youtube'),
  tiktok: simTargetCredentials('tiktok'),
  whatnot: { ...simTargetCredentials('whatnot'), webhookSecret: `whsec_${randomBytes(24).toString('base64')}` },
  bambuser: { ...simTargetCredentials('bambuser'), webhookHeaderName: 'x-webhook-secret', webhookHeaderValue: 'bb-header-secret' },
  facebook: simTargetCredentials('facebook'),
};
/** The same for account b (another channel / shop / seller / organisation / Page). */
export const OTHER_CREDENTIALS: Record<Platform, Record<string, string>> = {
  youtube: simTargetCredentials('youtube', 'b'),
  tiktok: simTargetCredentials('tiktok', 'b'),
  whatnot: { ...simTargetCredentials('whatnot', 'b'), webhookSecret: `whsec_${randomBytes(24).toString('base64')}` },
  bambuser: simTargetCredentials('bambuser', 'b'),
  facebook: simTargetCredentials('facebook', 'b'),
};
export const ALL_PLATFORMS: Platform[] = ['youtube', 'tiktok', 'whatnot', 'bambuser', 'facebook'];
export const PIN_EFFECTS = new Set(['product.pinned', 'message.posted']);

/** Creates one target per platform (id = platform name; `platforms`: those only); `lift` raises account limits for load tests. */
export async function addAllTargets(svc: TestService, sim: TestSim, partnerId: string, opts: { lift?: boolean; platforms?: readonly Platform[] } = {}): Promise<void> {
  for (const platform of opts.platforms ?? ALL_PLATFORMS) {
    if (opts.lift) await sim.control('PUT', `/_sim/${platform}/limits`, { requestsPerWindow: null, quotaPerDay: null });
    const r = await svc.api(`/v1/partners/${partnerId}/targets`, {
      json: {
        id: platform,
        platform,
        name: platform,
        credentials: CREDENTIALS[platform],
        baseUrl: sim.base(platform),
        commissionRateBps: 1000,
        ...(opts.lift ? { rateLimit: { requests: 10_000, windowMs: 1000 } } : {}),
      },
    });
    if (r.status !== 201) throw new Error(`target ${platform}: ${r.status} ${await r.text()}`);
  }
  if (opts.lift) await sim.control('PUT', '/_sim/youtube/limits', { streamActivationMs: 0 });
}

/**
 * For one test file: the simulators, then the service (`opts`), then `partner` with a target on every
 * platform (`addAllTargets`, limits lifted), all handed to `use` in the same beforeAll (within 60 s);
 * the service, then the simulators, closed after the file's tests.
 */
export function platformsPerFile(partner: string, use: (started: { svc: TestService; sim: TestSim; secret: string }) => unknown, opts: TestServiceOptions = {}, platforms: readonly Platform[] = ALL_PLATFORMS): void {
  let svc: TestService | undefined;
  let sim: TestSim | undefined;
  beforeAll(async () => {
    sim = await startSim();
    svc = await startService(opts);
    const secret = await createPartner(svc, partner);
    await addAllTargets(svc, sim, partner, { lift: true, platforms });
    await use({ svc, sim, secret });
  }, 60_000);
  afterAll(async () => {
    await svc?.close();
    await sim?.close();
  });
}

/**
 * For one test file of platform webhooks: the simulators, the service, `partner`, and one disabled
 * target (`target(sim)` is its body, without `enabled`: nothing is mirrored, its webhooks are still
 * verified and read), handed to `use`; closed after the file's tests.
 */
export function webhookTargetPerFile(partner: string, target: (sim: TestSim) => Record<string, unknown>, use: (started: { svc: TestService; sim: TestSim }) => unknown): void {
  let svc: TestService | undefined;
  let sim: TestSim | undefined;
  beforeAll(async () => {
    sim = await startSim();
    svc = await startService();
    await createPartner(svc, partner);
    const r = await svc.api(`/v1/partners/${partner}/targets`, { json: { ...target(sim), commissionRateBps: 1000, enabled: false } });
    if (r.status !== 201) throw new Error(`target: ${r.status} ${await r.text()}`);
    await use({ svc, sim });
  }, 60_000);
  afterAll(async () => {
    await svc?.close();
    await sim?.close();
  });
}

/** POST a Whatnot webhook `body` to target `targetId`, signed the Standard Webhooks way (as Whatnot signs) with `secret`. */
export function postWhatnotWebhook(svc: TestService, targetId: string, secret: string, body: string): Promise<Response> {
  const id = `msg_${randomUUID()}`;
  const ts = Math.floor(Date.now() / 1000);
  return fetch(`${svc.url}/v1/platform-webhooks/${targetId}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': signatureHeader(secret, id, ts, body) },
    body,
  });
}

/** For every mirror waiting for an operator: create the show by hand on the platform and link it. */
export async function linkOperatorShows(svc: TestService, sim: TestSim, partnerId: string, showId: string, platforms: Platform[] = ['tiktok', 'whatnot']): Promise<void> {
  for (const p of platforms) {
    await waitFor(async () => (await svc.rt.shows.getMirror(partnerId, showId, p))?.state === 'action_required', 30_000);
    const { externalId } = (await sim.control('POST', `/_sim/${p}/shows`, { title: `${showId} on ${p}` })) as { externalId: string };
    const r = await svc.api(`/v1/partners/${partnerId}/shows/${showId}/mirrors/${p}`, { method: 'PUT', json: { externalId } });
    if (r.status !== 200) throw new Error(`link ${p}: ${r.status} ${await r.text()}`);
  }
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/**
 * For one test file: the simulators with Whatnot rotating refresh tokens (the used one is then
 * invalid_grant), then the service with workers; closed after the file's tests.
 */
export function rotatingWhatnotPerFile(use: (started: { svc: TestService; sim: TestSim }) => void): void {
  let svc: TestService | undefined;
  let sim: TestSim | undefined;
  beforeAll(async () => {
    sim = await startSim();
    await sim.control('PUT', '/_sim/whatnot/limits', { rotateRefreshTokens: 1, requestsPerWindow: null });
    svc = await startService({ workers: true });
    use({ svc, sim });
  }, 60_000);
  afterAll(async () => {
    await svc?.close();
    await sim?.close();
  });
}

/** Target `id` of `partner`: a Whatnot app seller a connected through OAuth (access tokens expire, refreshed). */
export async function addWhatnotAppTarget(svc: TestService, sim: TestSim, partner: string, id: string): Promise<void> {
  const credentials = { ...simWhatnotAppCredentials('a'), webhookSecret: `whsec_${randomBytes(24).toString('base64')}` };
  const r = await svc.api(`/v1/partners/${partner}/targets`, { json: { id, platform: 'whatnot', name: 'Whatnot app', credentials, baseUrl: sim.base('whatnot'), commissionRateBps: 800 } });
  if (r.status !== 201) throw new Error(`target ${id}: ${r.status} ${await r.text()}`);
}

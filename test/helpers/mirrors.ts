/**
 * The set-up and the waits that the e2e mirror tests share: a target on the simulators, and "wait until
 * the show's mirror is so" over GET /v1/partners/{p}/shows/{s} (the REST view, as a partner sees it).
 */
import { CREDENTIALS } from './platforms.js';
import { createPartner, retryingUnavailable, startService, waitFor, type TestService, type TestServiceOptions } from './service.js';
import { startSim, type TestSim } from './sim.js';

/** A mirror as the show view gives it (the fields most tests read; a test may name its own type). */
export interface MirrorView {
  targetId: string;
  state: string;
  externalId: string | null;
  url: string | null;
  lastError: string | null;
}

/**
 * The body of POST /v1/partners/{p}/targets for a target on the simulator `sim`: the platform's test
 * credentials and the simulator's base URL, then `fields` (id, name, commissionRateBps, ...).
 */
export function simTarget(sim: TestSim, platform: keyof typeof CREDENTIALS, fields: { id: string; name: string; commissionRateBps: number } & Record<string, unknown>): Record<string, unknown> {
  return { platform, credentials: CREDENTIALS[platform], baseUrl: sim.base(platform), ...fields };
}

/** A Whatnot target `wn` and a TikTok target `tt` on the simulators (the pin-refused suites'). */
export function whatnotAndTiktok(sim: TestSim): Record<string, unknown>[] {
  return [
    simTarget(sim, 'whatnot', { id: 'wn', name: 'Whatnot', credentials: { accessToken: CREDENTIALS.whatnot.accessToken! }, commissionRateBps: 800 }),
    simTarget(sim, 'tiktok', { id: 'tt', name: 'TikTok Shop', credentials: CREDENTIALS.tiktok, commissionRateBps: 1000 }),
  ];
}

/** Creates the target `body` for `partner` (a path segment as given; a 503 sent again) and expects 201. */
export async function addTarget(svc: TestService, partner: string, body: Record<string, unknown>): Promise<void> {
  const r = await retryingUnavailable(() => svc.api(`/v1/partners/${partner}/targets`, { json: body }));
  expect(r.status).toBe(201);
}

/**
 * What most e2e mirror tests start with: the simulators (`prepare` sets them up, e.g. their limits),
 * the service (with its workers unless `service` says otherwise), a partner (its webhook secret) and
 * its targets (each created: 201; no partner, no targets and an empty secret when `partner` is
 * undefined). On a failure what was started is closed again.
 */
export async function startSimRig(
  partner: string | undefined,
  targets: (sim: TestSim) => Record<string, unknown>[],
  opts: { service?: TestServiceOptions; prepare?: (sim: TestSim) => Promise<unknown> } = {},
): Promise<{ sim: TestSim; svc: TestService; secret: string }> {
  const sim = await startSim();
  let svc: TestService | undefined;
  try {
    await opts.prepare?.(sim);
    svc = await startService(opts.service ?? { workers: true });
    if (partner === undefined) return { sim, svc, secret: '' };
    const secret = await createPartner(svc, partner);
    for (const t of targets(sim)) await addTarget(svc, partner, t);
    return { sim, svc, secret };
  } catch (err) {
    await svc?.close();
    await sim.close();
    throw err;
  }
}

/**
 * startSimRig for one test file: started before the file's tests (within `timeoutMs`, jest's default
 * unless told) and handed to `use`, closed after them (the service, then the simulators).
 */
export function simRigPerFile(
  partner: string | undefined,
  targets: (sim: TestSim) => Record<string, unknown>[],
  use: (rig: { sim: TestSim; svc: TestService; secret: string }) => void,
  opts: { service?: TestServiceOptions; prepare?: (sim: TestSim) => Promise<unknown>; timeoutMs?: number } = {},
): void {
  let rig: { sim: TestSim; svc: TestService } | undefined;
  beforeAll(async () => {
    const started = await startSimRig(partner, targets, opts);
    rig = started;
    use(started);
  }, opts.timeoutMs);
  afterAll(async () => {
    await rig?.svc.close();
    await rig?.sim.close();
  });
}

/** simRigPerFile with no partner: the simulators and the service only (the tests make their partners). */
export function simServicePerFile(
  use: (rig: { sim: TestSim; svc: TestService }) => void,
  opts: { service?: TestServiceOptions; prepare?: (sim: TestSim) => Promise<unknown>; timeoutMs?: number } = {},
): void {
  simRigPerFile(undefined, () => [], use, opts);
}

/**
 * A simulator set-up (simRigPerFile's `prepare`): YouTube's bound stream goes active with no video pushed
 * (a simulated encoder; docs/testing.md), at once (no activation delay). With the simulator's default
 * 300 ms delay a show.live sent right after the bind found the stream inactive, and the sync waited its
 * 5 s (STREAM_INACTIVE_DELAY_MS) before going live: 5 s of most YouTube cases. That wait is tested in
 * youtube.adapter, sim.youtube, sim.rtmp and relay.push (live only once its sink saw data).
 */
export const youtubeEncoderNow = (sim: TestSim): Promise<unknown> => sim.control('PUT', '/_sim/youtube/limits', { simulatedEncoder: 1, streamActivationMs: 0 });

/** A clock for a file's events: each call one second after the last, starting a minute ago. */
export function eventClock(): () => string {
  let at = Date.now() - 60_000;
  return () => new Date((at += 1000)).toISOString();
}

/** The show's mirrors, or undefined while the show view does not answer 200. */
export async function showMirrors<M = MirrorView>(svc: TestService, partner: string, showId: string): Promise<M[] | undefined> {
  const r = await svc.api(`/v1/partners/${partner}/shows/${showId}`);
  if (r.status !== 200) return undefined;
  return ((await r.json()) as { mirrors: M[] }).mirrors;
}

/**
 * Waits (up to `timeoutMs`, 20 s unless told) until the show's mirror on `targetId` (the show's first
 * mirror when no target is named) satisfies `pred`, and returns it. With `failedIsError` a failed
 * mirror's lastError is what a time-out reports.
 */
export async function waitForMirror<M extends object = MirrorView>(
  svc: TestService,
  partner: string,
  showId: string,
  pred: (m: M) => boolean,
  opts: { targetId?: string; timeoutMs?: number; failedIsError?: boolean } = {},
): Promise<M> {
  return waitFor(async () => {
    const mirrors = await showMirrors<M>(svc, partner, showId);
    const m = opts.targetId === undefined ? mirrors?.[0] : mirrors?.find((x) => (x as { targetId?: string }).targetId === opts.targetId);
    const v = m as { state?: string; lastError?: string | null } | undefined;
    // (waitFor keeps trying; this error is what its time-out then reports)
    if (opts.failedIsError && v?.state === 'failed') throw new Error(`${opts.targetId ?? 'mirror'} failed: ${v.lastError}`);
    return m && pred(m) ? m : undefined;
  }, opts.timeoutMs ?? 20_000);
}

/** A reconciliation run as the e2e suites read it (`GET /v1/reconciliations/{id}`). */
export interface ReconRun {
  status: string;
  summary: { targets: { targetId: string; platformOrders: number; ledgerOrders: number; healed: number; error?: string }[] };
  discrepancies: { kind: string; targetId: string; orderId: string; healed: boolean; reason?: string }[];
}

/** Starts a reconciliation of [from, to) for the partner (202) and waits until it completed or failed. */
export async function reconcileAndWait(svc: TestService, partnerId: string, from: string, to: string): Promise<ReconRun> {
  const r = await svc.api(`/v1/partners/${partnerId}/reconciliations`, { json: { from, to } });
  expect(r.status).toBe(202);
  const { id } = (await r.json()) as { id: string };
  return waitFor(async () => {
    const body = (await (await svc.api(`/v1/reconciliations/${id}`)).json()) as ReconRun;
    return body.status === 'completed' || body.status === 'failed' ? body : undefined;
  }, 30_000);
}

/** Targets: where a partner's shows are mirrored (README / OpenAPI at /docs). Credentials are sealed and never returned. */
import type { FastifyBaseLogger } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { IdSchema } from '../../domain/events.js';
import { AppError, conflict, notFound } from '../../lib/errors.js';
import { randomId } from '../../lib/ids.js';
import { assertPublicDestination, DestinationRefusedError } from '../../lib/ssrf.js';
import { ConcurrentUpdateError, TARGET_DELETING_TTL_MS, type PartnerRepository, type TargetRecord } from '../../store/partner.repository.js';
import type { PendingAudit } from '../../store/audit.repository.js';
import { ConcurrentTokenWriteError, GrantHoldLostError, targetGrant, type KeptGrant } from '../../store/token.repository.js';
import type { ShowRepository } from '../../store/show.repository.js';
import type { SyncProducer } from '../../queues/queues.js';
import { mayHoldPlatformShow } from '../../domain/mirror.js';
import { PLATFORMS, type AccessToken, type TargetAdapter } from '../../targets/target.adapter.js';
import { sameGrant, sameGrantNewSecret } from '../../targets/target.registry.js';
import type { AccountOrders } from '../../reconcile/account-orders.js';
import type { CredentialVerifier, VerifyTarget } from '../../targets/target.verify.js';
import { maskUrl } from '../../relay/mask.js';
import { assertPartnerAccess } from '../plugins/auth.plugin.js';
import { FORBIDDEN_PARTNER, FORBIDDEN_ROLE, NameSchema, ok, TargetSchema } from '../openapi.js';

export interface TargetRoutesOptions {
  partners: PartnerRepository;
  shows: ShowRepository;
  sync: SyncProducer;
  allowPrivateDestinations: boolean;
  /** Active shows read per round trip when a new or re-enabled target is kicked (config sweepPageSize). */
  sweepPageSize: number;
  /** Checks credentials with the platform when a target is saved (src/targets/target.verify.ts). */
  verifier: CredentialVerifier;
  /** Platform accounts of targets, for reconciliation (src/reconcile/account-orders.ts). */
  accounts: AccountOrders;
  /** The target's adapter (SyncService.adapterFor): asks the platform to name the account when the check did not. */
  adapterFor: (t: TargetRecord) => Pick<TargetAdapter, 'accountId'> | null;
}

const Credentials = z.record(z.string().min(1).max(200), z.string().min(1).max(10_000)).refine((c) => Object.keys(c).length > 0, 'credentials must not be empty');
const BaseUrl = z.url({ protocol: /^https?$/ }).max(2000);
const RateLimit = z.strictObject({ requests: z.number().int().min(1).max(100_000), windowMs: z.number().int().min(100).max(86_400_000) });
const CreateTarget = z.object({
  id: IdSchema.optional(),
  platform: z.enum(PLATFORMS),
  name: NameSchema,
  credentials: Credentials,
  baseUrl: BaseUrl.optional(),
  commissionRateBps: z.number().int().min(0).max(10_000),
  enabled: z.boolean().default(true),
  pinDelayMs: z.number().int().min(0).max(120_000).default(0),
  rateLimit: RateLimit.optional(),
}).strict();
const PatchTarget = z.object({
  name: NameSchema.optional(),
  credentials: Credentials.optional(),
  baseUrl: BaseUrl.nullable().optional(),
  commissionRateBps: z.number().int().min(0).max(10_000).optional(),
  enabled: z.boolean().optional(),
  pinDelayMs: z.number().int().min(0).max(120_000).optional(),
  rateLimit: RateLimit.nullable().optional(),
})
  // A field a target cannot change (platform, id) is a 400 naming it, not silently ignored.
  .strict()
  // An empty PATCH changed nothing but updatedAt and wrote a target.updated audit entry with no fields (a 200).
  .refine((b) => Object.values(b).some((v) => v !== undefined), 'give at least one field to change');
const Params = z.object({ partnerId: IdSchema });
const TargetParams = z.object({ partnerId: IdSchema, targetId: IdSchema });
/** `?verify=false`: save without asking the platform (it is down and the operator must save now). */
/** `?force=true`: delete even while shows of the target are on the platform (they are left there). */
const DeleteQuery = z.object({ force: z.enum(['true', 'false']).default('false').describe('true: delete even while a mirror of the target still has a show on the platform; that show is left there, with no credentials in Syndicast to end it (end it in the platform\'s own tools)') });
const PATCH_CREDENTIALS =
  "`credentials` replace the target's. Credentials that keep its OAuth grant (the same `clientId` and `clientSecret`, TikTok's `appKey` and `appSecret`, and the same `refreshToken`: to change `webhookSecret`, or the same ones again) keep the target's cached token, with the refresh token the platform rotated since (Whatnot apps, TikTok): the check starts from it (a refresh token a worker rotated while the check ran is followed: one more refresh with the worker's, no 422), and `?verify=false` leaves it as it is. A new client secret alone (`clientSecret`, TikTok's `appSecret`: a typo fixed, a secret rotated in the platform's console) keeps the cached token's refresh token too, and is checked with that secret (a refresh from it, never the cached access token). A new `refreshToken` (a new grant), another app, another `baseUrl`, or stored credentials that no key opens (SECRETS_KEY_PREVIOUS removed too early) start from the new credentials alone: the check's token, or none with `?verify=false` (a worker's refresh of the old grant still under way is not stored over them). So does a `baseUrl` alone: the host is the token endpoint too, and the old host's tokens are not sent to the new one (where the old host rotated the credentials' refresh token and the new one is the same platform, send the new `refreshToken` with it). A checked `baseUrl` alone of a target whose stored credentials no key opens is a 409: send new `credentials` with it, or `?verify=false`. A target's PATCHes of `credentials` or `baseUrl` run one at a time (each writes the target and its token record): one sent while another is being checked waits for it, then starts from what it saved (409 when the other has not finished within the longest a check may take).";
const SaveQuery = z.object({ verify: z.enum(['true', 'false']).default('true').describe('false: save without checking the credentials with the platform') });

/** A checked PATCH of baseUrl alone, of a target whose stored credentials no key opens. */
function unopenable(targetId: string): AppError {
  const detail = `the stored credentials of target ${targetId} cannot be opened (no SECRETS_KEY or SECRETS_KEY_PREVIOUS opens them), so the new baseUrl cannot be checked with them; nothing changed. PATCH new credentials (with the baseUrl), or save the baseUrl unchecked with ?verify=false`;
  return new AppError(409, 'Conflict', detail, [{ path: 'body.credentials', message: 'required: the stored credentials cannot be opened' }]);
}

/**
 * A target as the API shows it, never its credentials; `masked` (a viewer key's read): its `baseUrl` as
 * maskUrl shows it (a base URL may carry user:password or a token as another URL a partner gives).
 */
export function publicTarget(t: TargetRecord, masked = false): Omit<TargetRecord, 'credentialsSealed' | 'deleting' | 'incarnation'> & { hasCredentials: true } {
  const { credentialsSealed: _sealed, deleting: _deleting, incarnation: _incarnation, ...rest } = t;
  return { ...rest, ...(masked && rest.baseUrl !== undefined ? { baseUrl: maskUrl(rest.baseUrl) } : {}), hasCredentials: true };
}

export const targetRoutes: FastifyPluginAsyncZod<TargetRoutesOptions> = async (app, opts) => {
  const { partners } = opts;
  // One partner's dead host names share one lookup slot (the owner), not one per name (src/lib/ssrf.ts).
  // A host that does not exist is a 400 also with ALLOW_PRIVATE_DESTINATIONS (mustResolve).
  const checkBaseUrl = async (url: string | undefined | null, partnerId: string): Promise<void> => {
    if (!url) return;
    try {
      await assertPublicDestination(url, opts.allowPrivateDestinations, undefined, partnerId, true);
    } catch (err) {
      if (err instanceof DestinationRefusedError) throw new AppError(400, 'Bad Request', `baseUrl refused: ${err.message}`, [{ path: 'body.baseUrl', message: err.message }]);
      throw err;
    }
  };
  /**
   * Asks the platform whether the credentials work: 422 with its reason when it refuses them, 503
   * (Retry-After) when it cannot answer now. Returns the access token the check obtained, if any.
   */
  const verify = async (t: VerifyTarget, held: AccessToken | null = null): Promise<{ checked: boolean; token: AccessToken | null; from: AccessToken | null; accountId?: string | undefined }> => {
    const r = await opts.verifier.verify(t, held);
    if (r.kind === 'refused') throw new AppError(422, 'Unprocessable Content', r.detail, [{ path: 'body.credentials', message: r.detail }]);
    if (r.kind === 'unavailable') throw new AppError(503, 'Service Unavailable', r.detail, undefined, { 'retry-after': String(r.retryAfterSec) });
    return { checked: r.checked, token: r.token, from: r.from, accountId: r.accountId };
  };
  /** The target on its account's registry: the platform's account when the check named it (AccountOrders.learn). */
  const onAccount = async (t: TargetRecord, checked: { accountId?: string | undefined } | null, log: FastifyBaseLogger): Promise<void> => {
    if (checked?.accountId !== undefined) return opts.accounts.learn(t, checked.accountId);
    await opts.accounts.register([t]);
    // The check ran but could not name the account (Whatnot's GET /users/me failed: 429, 5xx, timeout):
    // asked once more now, best effort (the save stands), unless these credentials' account has moved
    // already. Saved unchecked (?verify=false: nothing asks the platform at the save), the target's
    // order webhooks and its next run ask (AccountOrders.webhookOrders, learnFrom). Until then the target
    // is on its credential account, apart from its platform account's other targets.
    const adapter = checked ? opts.adapterFor(t) : null;
    if (!adapter) return;
    try {
      await opts.accounts.learnFrom(t, adapter);
    } catch (err) {
      log.warn({ targetId: t.id, partnerId: t.partnerId, err: { message: err instanceof Error ? err.message : String(err) } }, 'platform account of the target not learned after its save');
    }
  };
  /** A new or re-enabled target picks up the partner's active shows on the next sweep; kick it now. */
  const kick = async (t: TargetRecord): Promise<void> => {
    if (!t.enabled) return;
    // Every active show of the partner, page by page (not only the first page of the set).
    for await (const page of opts.shows.activeShowPages(opts.sweepPageSize)) {
      await Promise.all(page.filter(([p]) => p === t.partnerId).map(([partnerId, showId]) => opts.sync.enqueue(t.platform, { partnerId, showId, targetId: t.id })));
    }
  };

  app.post('/v1/partners/:partnerId/targets', { preHandler: app.requireRole('operator'), schema: { tags: ['targets'], summary: 'Add a target platform account (credentials checked with the platform unless ?verify=false)', params: Params, querystring: SaveQuery, body: CreateTarget, docResponses: { 201: ok('created; its active shows are synced to it', TargetSchema), 400: 'invalid body, or baseUrl refused: its host does not exist (also with ALLOW_PRIVATE_DESTINATIONS), or is not a public address', 403: FORBIDDEN_ROLE, 404: 'unknown partner', 409: 'a target with this id exists', 422: "the platform refused the credentials (`detail` carries the platform's reason); nothing saved", 503: 'the platform could not be asked (unreachable, 5xx, timeout, rate limited) or DNS cannot look up the host of baseUrl right now (nothing saved), or storage is unavailable or did not answer in time (the request may or may not have taken effect: list the targets before adding it again); retry later (Retry-After); ?verify=false saves without asking the platform, but the host of baseUrl is looked up either way' } } }, async (req, reply) => {
    const { partnerId } = req.params;
    if (!(await partners.get(partnerId))) throw notFound(`partner ${partnerId}`);
    await checkBaseUrl(req.body.baseUrl, partnerId);
    const { credentials, ...rest } = req.body;
    const id = req.body.id ?? randomId('tgt_');
    // target.created is recorded with the creation (one script) and written after it, once: the retry
    // of a create whose audit write failed (5xx) gets 409 and writes it first.
    await app.auditSettle({ partnerId });
    if (await partners.getTarget(partnerId, id)) throw conflict(`target ${id} already exists`);
    const checked = req.query.verify === 'true' ? await verify({ id, partnerId, platform: req.body.platform, baseUrl: req.body.baseUrl, credentials, rateLimit: req.body.rateLimit }) : null;
    const now = new Date().toISOString();
    // A new incarnation: mirror records an earlier target of this id left (deleted) are not this one's.
    const t: TargetRecord = { ...rest, id, partnerId, baseUrl: req.body.baseUrl, credentialsSealed: partners.sealCredentials(credentials), incarnation: randomId('inc_'), createdAt: now, updatedAt: now };
    if (!(await partners.createTarget(t, app.auditPending(req, { action: 'target.created', partnerId, targetId: t.id, detail: { credentialsChecked: checked?.checked ?? false } })))) throw conflict(`target ${t.id} already exists`);
    await opts.verifier.keep(t.id, checked?.token ?? null);
    // On its platform account's registry: reconciliation leaves the orders of its shows to it (src/reconcile/account-orders.ts).
    // The account the platform named in the check, else the one its credentials name (until the platform names it).
    await onAccount(t, checked, req.log);
    await app.auditSettle({ partnerId });
    await kick(t);
    return reply.status(201).send(publicTarget(t));
  });

  app.get('/v1/partners/:partnerId/targets', { preHandler: app.requireRole('operator', 'viewer', 'partner'), schema: { tags: ['targets'], summary: "A partner's targets (never their credentials)", params: Params, docResponses: { 200: ok('the targets', z.object({ targets: z.array(TargetSchema) })), 403: FORBIDDEN_PARTNER, 404: 'unknown partner' } } }, async (req) => {
    assertPartnerAccess(req, req.params.partnerId);
    const b = await partners.bundle(req.params.partnerId);
    if (!b) throw notFound(`partner ${req.params.partnerId}`);
    return { targets: b.targets.map((t) => publicTarget(t, req.principal?.role === 'viewer')) };
  });

  app.patch('/v1/partners/:partnerId/targets/:targetId', { preHandler: app.requireRole('operator'), schema: { tags: ['targets'], summary: 'Disable/enable, rename, rotate credentials (new credentials or baseUrl are checked with the platform unless ?verify=false)', description: PATCH_CREDENTIALS, params: TargetParams, querystring: SaveQuery, body: PatchTarget, docResponses: { 200: ok('the target as changed', TargetSchema), 400: 'invalid body, or baseUrl refused: its host does not exist (also with ALLOW_PRIVATE_DESTINATIONS), or is not a public address', 403: FORBIDDEN_ROLE, 404: 'unknown partner or target', 409: "a checked change of `baseUrl` alone, of a target whose stored credentials no key opens (SECRETS_KEY_PREVIOUS removed too early): there is nothing to check the new host with; nothing changed. Send new `credentials` with it, or save it with ?verify=false. Also: another PATCH of the target's `credentials` or `baseUrl` (they run one at a time, each waiting for the one before) did not finish within the longest a check may take; nothing changed, try again. Also: this PATCH lost its hold on the target (a stalled process); the target was not changed (a refresh token the platform rotated during the check is kept), try again", 422: "the platform refused the new credentials (`detail` carries the platform's reason); nothing changed", 503: 'the platform could not be asked (unreachable, 5xx, timeout, rate limited) or DNS cannot look up the host of baseUrl right now (nothing changed), or storage is unavailable or did not answer in time (the request may or may not have taken effect); retry later (Retry-After); ?verify=false saves without asking the platform, but the host of baseUrl is looked up either way' } } }, async (req) => {
    const { partnerId, targetId } = req.params;
    // What the platform is asked about: the credentials and host the target will have after this change.
    const reaches = req.body.credentials !== undefined || req.body.baseUrl !== undefined;
    // Such a change writes the target's credentials (or host) and its token record, two writes in two
    // slots: one such PATCH of a target at a time (its grant lock, held from its read of the target to
    // its last write), or two that ran together could leave one's credentials with the other's token
    // record. The second waits for the first and starts from what it saved.
    const lock = reaches ? await opts.verifier.lockGrant(targetId, partnerId) : null;
    if (reaches && !lock) throw conflict(`target ${targetId} is being changed by another request (a PATCH of its credentials or baseUrl) that has not finished; try again`);
    // Best effort: a release that failed (Redis down) leaves the lock to its lease, and does not change
    // the answer (a PATCH that took effect is still a 200 with its audit and kick; a 422 stays a 422).
    const release = async (): Promise<void> => {
      try {
        await lock?.release();
      } catch (err) {
        req.log.warn({ err, targetId }, 'target PATCH: releasing the grant lock failed; its lease frees it');
      }
    };
    try {
      const current = await partners.getTarget(partnerId, targetId);
      if (!current) throw notFound(`target ${targetId}`);
      await checkBaseUrl(req.body.baseUrl, partnerId);
      // A pending token record of a PATCH that crashed between its writes (or whose target write timed
      // out) is settled first, by the target read under this lock: a check of the same grant starts
      // from the committed record, not from that PATCH's (another app's: a 422, or a 200 beside it).
      // (By the target's plaintext grant: the same credentials sealed again are still its.)
      const opened = reaches ? partners.credentialsIfOpen(current) : undefined;
      const committed = targetGrant(current.platform, current.credentialsSealed, opened, current.baseUrl);
      if (lock) {
        try {
          await opts.verifier.settlePending(targetId, lock.fence, committed);
        } catch (err) {
          if (err instanceof GrantHoldLostError || err instanceof ConcurrentTokenWriteError) throw conflict(`target ${targetId}: changed by other requests while this one was being saved; the target was not changed, try again`);
          throw err;
        }
      }
      const { credentials, baseUrl, rateLimit, ...rest } = req.body;
      const nextBaseUrl = baseUrl !== undefined ? (baseUrl ?? undefined) : current.baseUrl;
      // The app's credentials sent again with the same grant (to change webhookSecret, or unchanged; a
      // new client secret is a new grant, checked with it): the token record stays the workers', and the
      // check starts from it. It holds the refresh token the platform rotated since (Whatnot apps,
      // TikTok); the body's, the original one, is dead by then: checked with it, a 422; saved unchecked
      // and the record dropped, the grant lost.
      // Stored credentials that no key opens (SECRETS_KEY_PREVIOUS removed too early) are not known to
      // be the same grant: the PATCH that repairs them saves the new ones like a new grant (it was a 500).
      // A new app secret for the same grant (a typo fixed, a secret rotated in the platform's console)
      // keeps the record too: its refresh token may be the only live one. It is checked with the new
      // secret: the record's access token is not passed on, the check refreshes from its refresh token.
      const stored = credentials !== undefined && nextBaseUrl === current.baseUrl ? opened : undefined;
      const keepsGrant = credentials !== undefined && stored !== undefined && sameGrant(current.platform, stored, credentials);
      const newSecret = credentials !== undefined && stored !== undefined && !keepsGrant && sameGrantNewSecret(current.platform, stored, credentials);
      const held = keepsGrant || newSecret ? await opts.verifier.held(targetId) : null;
      // A new baseUrl alone is checked with the stored credentials. When no key opens them (SECRETS_KEY_PREVIOUS
      // removed too early) there is nothing to check it with (it was a 500): 409, nothing changed; the
      // operator sends new credentials with it (the repair), or saves it unchecked (?verify=false).
      const checkWith = reaches && req.query.verify === 'true' ? (credentials ?? opened) : undefined;
      if (reaches && req.query.verify === 'true' && checkWith === undefined) throw unopenable(targetId);
      const checked =
        checkWith !== undefined
          ? await verify(
              {
                id: targetId,
                partnerId,
                platform: current.platform,
                baseUrl: nextBaseUrl,
                credentials: checkWith,
                rateLimit: rateLimit !== undefined ? (rateLimit ?? undefined) : current.rateLimit,
                // The advice of a refusal names the target's fields too (a PATCH replaces them all): one
                // this request left out (a Whatnot webhookSecret) is not left out of the fix it suggests.
                ...(credentials !== undefined && opened !== undefined ? { heldFields: Object.keys(opened) } : {}),
              },
              held && newSecret ? { ...held, expiresAt: 0 } : held,
            )
          : null;
      const credentialsSealed = credentials ? partners.sealCredentials(credentials) : undefined;
      // The lock was taken by another PATCH (this one stalled past its lease: it is renewed while the
      // check runs), which may be changing the grant now: this one writes neither record. But a check of
      // the same grant refreshed from the record's refresh token, which the platform may have rotated
      // (Whatnot, TikTok): that record is kept all the same (compare-and-set: only if it still holds
      // what the check refreshed from), or the only live refresh token is lost.
      const lost = async (): Promise<never> => {
        if (held && checked) await opts.verifier.keepHeld(targetId, checked.from ?? held, checked.token);
        throw conflict(`target ${targetId}: this change took longer than its hold on the target's credentials; the target was not changed, try again`);
      };
      if (lock && !(await lock.renew())) await lost();
      // The token record first, then the target record; each write checks in its own script that its
      // slot's hold still names this PATCH (lapsed or not: nobody took it since), so a PATCH that stalled
      // here while another took the lock writes nothing after it (GrantHoldLostError). A new grant's
      // record written before the target write was refused is put back as it was, if it still is.
      // The same grant keeps its record (with what the check refreshed); new credentials or another host
      // never use the token of the old ones: the check's token, or none. (A host is its platform's token
      // endpoint too: tokens the old host issued are not sent to another, also for a baseUrl alone.)
      // (`from`: a worker that rotated the grant while the check ran left a newer record, which the check
      // refreshed from in turn: that one is what the check's token replaces.)
      // A new grant's record names what the target is before and after this PATCH's write: the next
      // PATCH tells by it whether this one's target write happened (RedisTokenStore.newGrant).
      const fence = lock ? { ...lock.fence, committed, writes: targetGrant(current.platform, credentialsSealed ?? current.credentialsSealed, credentials ?? opened, nextBaseUrl) } : undefined;
      let kept: KeptGrant | undefined;
      let updated: Awaited<ReturnType<typeof partners.updateTarget>>;
      try {
        if (held) await opts.verifier.keepHeld(targetId, checked?.from ?? held, checked?.token ?? null, fence);
        else if (credentials || baseUrl !== undefined) kept = await opts.verifier.keep(targetId, checked?.token ?? null, fence);
        // Atomic against a concurrent PATCH or DELETE (compare-and-set, re-applied to a fresh read).
        updated = await partners.updateTarget(
          partnerId,
          targetId,
          (t) => ({
            ...t,
            ...Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined)),
            ...(rateLimit !== undefined ? { rateLimit: rateLimit ?? undefined } : {}),
            ...(baseUrl !== undefined ? { baseUrl: baseUrl ?? undefined } : {}),
            ...(credentialsSealed ? { credentialsSealed } : {}),
            updatedAt: new Date().toISOString(),
          }),
          fence,
        );
      } catch (err) {
        // A target write that surely did not happen (its hold another's, or a compare-and-set lost on
        // every round) puts back the committed record; one that may have happened (a Redis timeout)
        // leaves the new grant's record, which names its base (the next PATCH tells which is committed).
        if (kept && fence && (err instanceof GrantHoldLostError || err instanceof ConcurrentUpdateError)) await opts.verifier.undoGrant(targetId, kept, fence);
        // Another request changed the record on every round: nothing of this PATCH stands, a 409 to try again (not a 500).
        if (err instanceof ConcurrentUpdateError || err instanceof ConcurrentTokenWriteError) {
          throw conflict(`target ${targetId}: changed by other requests while this one was being saved; the target was not changed, try again`);
        }
        if (!(err instanceof GrantHoldLostError)) throw err;
        return await lost();
      }
      if (!updated) {
        // Deleted meanwhile: the record this PATCH wrote goes with it (DELETE deleted the target's).
        if (kept && fence) await opts.verifier.undoGrant(targetId, kept, fence);
        throw notFound(`target ${targetId}`);
      }
      const { before: t, after: next } = updated;
      // Both written: the next PATCH of the grant may start (the audit and the kick need no hold on it).
      await release();
      // Other credentials or a host may be another platform account. (Stored credentials no key opens,
      // with a baseUrl alone under ?verify=false: not registered; the partner's next reconciliation tries again.)
      if (credentials || (baseUrl !== undefined && partners.credentialsIfOpen(next))) await onAccount(next, checked, req.log);
      const action = t.enabled && !next.enabled ? 'target.disabled' : !t.enabled && next.enabled ? 'target.enabled' : 'target.updated';
      await app.audit(req, { action, partnerId, targetId, detail: { fields: Object.keys(req.body), ...(reaches ? { credentialsChecked: checked?.checked ?? false } : {}) } });
      if (!t.enabled || credentials) await kick(next);
      return publicTarget(next);
    } finally {
      await release();
    }
  });

  /**
   * The partner's shows whose mirror on this target still holds a show on the platform (made, being
   * made, or a create whose outcome is unknown; not ended or cancelled there: mayHoldPlatformShow).
   * Every such show is in the active set: the sweep keeps a show there while a mirror of it, of an
   * enabled or a disabled target, may hold one.
   */
  const onPlatform = async (partnerId: string, target: TargetRecord): Promise<string[]> => {
    const held: string[] = [];
    for await (const page of opts.shows.activeShowPages(opts.sweepPageSize)) {
      const mine = page.filter(([p]) => p === partnerId).map(([, showId]) => showId);
      // The target's own mirrors: a record an earlier target of this id left is none of its (ownMirror).
      const mirrors = await Promise.all(mine.map((showId) => opts.shows.getMirror(partnerId, showId, target)));
      mirrors.forEach((m, i) => {
        if (m && mayHoldPlatformShow(m)) held.push(mine[i]!);
      });
    }
    return held.sort();
  };

  app.delete('/v1/partners/:partnerId/targets/:targetId', { preHandler: app.requireRole('operator'), schema: { tags: ['targets'], summary: 'Delete a target (refused while a show of it is still on the platform, unless ?force=true)', params: TargetParams, querystring: DeleteQuery, docResponses: { 204: ok('deleted'), 403: FORBIDDEN_ROLE, 404: 'unknown partner or target', 409: 'a mirror of this target still has a show on the platform (scheduled, live, or being created: also a create whose outcome is unknown, as on a mirror that failed during its create and was retried; also one a sync created while this request ran): deleting the target would leave it there with no credentials left to end it. `detail` names the shows; wait until they end or are cancelled (a disabled target ends them only once enabled again), then delete; or delete with ?force=true and end them on the platform by hand' } } }, async (req, reply) => {
    const { partnerId, targetId } = req.params;
    // target.deleted is recorded with the delete (one script) and written after it, each entry once:
    // every DELETE first writes those a DELETE whose audit write failed (5xx) left, as its retry finds
    // the target gone (404) and has no delete of its own to audit.
    await app.auditSettle({ partnerId });
    const target = await partners.getTarget(partnerId, targetId);
    if (!target) throw notFound(`target ${targetId}`);
    // The target's credentials are what ends or deletes its broadcasts (the sync path's cancelShow):
    // gone with the target, a live or scheduled show on the platform would be left there for good.
    const force = req.query.force === 'true';
    const refuse = (held: string[]): AppError => {
      const shown = held.slice(0, 20).join(', ') + (held.length > 20 ? `, … (${held.length} in all)` : '');
      return conflict(`target ${targetId} still has a show on the platform for show(s) ${shown}: deleting it would leave them there. Delete it once those shows have ended or been cancelled and their mirrors followed (a disabled target follows them only once enabled again), or with ?force=true and end them on the platform by hand`);
    };
    // The audit names what a forced delete left on the platform: the operator's list of shows to end by hand.
    const deleted = (left: string[]): PendingAudit => app.auditPending(req, { action: 'target.deleted', partnerId, targetId, ...(left.length > 0 ? { detail: { forced: true, leftOnPlatform: left.slice(0, 100) } } : {}) });
    let held = await onPlatform(partnerId, target);
    if (held.length > 0 && !force) throw refuse(held);
    if (force) {
      if (!(await partners.deleteTarget(partnerId, targetId, deleted(held)))) throw notFound(`target ${targetId}`);
    } else {
      // Between that check and the delete a sync run could still save `provisioning` and create a show
      // on the platform, left there with no credentials to end it though the operator did not force.
      // So the target is first marked "being deleted" (in its record, atomically): a run that sees the
      // mark, at its first read or its next save, makes no further platform call (it waits); then the
      // mirrors are checked again. Every run's save before the mark is in that check; none after it
      // calls the platform. The delete happens only while that same mark is still on the target
      // (not replaced by another DELETE's, not expired: then it starts over).
      const token = randomId('del_');
      for (let attempt = 0; ; attempt++) {
        const mark = await partners.markDeleting(partnerId, targetId, token, TARGET_DELETING_TTL_MS);
        if (!mark) throw notFound(`target ${targetId}`);
        held = await onPlatform(partnerId, target);
        if (held.length > 0) {
          // A sync made (or is making) a show there meanwhile: refused as above, and its runs go on.
          await partners.deletingDone(partnerId, targetId, mark, 'unmark');
          throw refuse(held);
        }
        const done = await partners.deletingDone(partnerId, targetId, mark, 'del', deleted(held));
        if (done === 'done') break;
        if (done === 'gone') throw notFound(`target ${targetId}`);
        if (attempt >= 4) throw conflict(`target ${targetId} is being changed by another request (another DELETE); try again`);
      }
    }
    await app.auditSettle({ partnerId });
    return reply.status(204).send();
  });
};

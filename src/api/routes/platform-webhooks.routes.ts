/**
 * POST /v1/platform-webhooks/{targetId} — where a target platform sends its own webhooks (README / OpenAPI at /docs).
 * No API key: the target's adapter verifies the platform's own scheme on the raw body. Orders in the
 * webhook are stored in the ledger before the 200 goes out (a platform retries anything else). On a
 * platform account with several targets (each subscribed, each sent the same order), an order is stored
 * under one of them: the rules of src/reconcile/account-orders.ts, which reconciliation follows too.
 */
import type { FastifyPluginAsync } from 'fastify';
import { acceptAnyContentType } from '../plugins/raw-body.js';
import type { AttributionService } from '../../attribution/attribution.service.js';
import { AppError, notFound, unauthorized, type FieldError } from '../../lib/errors.js';
import { ID_PATTERN } from '../../lib/ids.js';
import { idRecord } from '../../lib/id-record.js';
import type { SyncService } from '../../mirror/sync.service.js';
import type { AccountOrders } from '../../reconcile/account-orders.js';
import type { PartnerRepository } from '../../store/partner.repository.js';
import { isTargetError, WebhookAuthError, type TargetError } from '../../targets/target.errors.js';
import { z } from 'zod';
import { ok } from '../openapi.js';

const MoneyDoc = z.object({ amount: z.number().int(), currency: z.string() });

export const PLATFORM_WEBHOOK_BODY_LIMIT = 1024 * 1024;
/** At most this many conflicting orders are named in a webhook's answer (`conflicting` counts them all). */
export const CONFLICTING_ORDERS_LISTED = 20;

export interface PlatformWebhookRoutesOptions {
  partners: PartnerRepository;
  syncService: SyncService;
  attribution: AttributionService;
  accounts: AccountOrders;
}

export const platformWebhookRoutes: FastifyPluginAsync<PlatformWebhookRoutesOptions> = async (app, opts) => {
  // Encapsulated: only this plugin's route keeps the raw bytes (signatures cover them exactly).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: PLATFORM_WEBHOOK_BODY_LIMIT }, (_req, body, done) => done(null, body));
  acceptAnyContentType(app);

  app.post<{ Params: { targetId: string } }>(
    '/v1/platform-webhooks/:targetId',
    {
      bodyLimit: PLATFORM_WEBHOOK_BODY_LIMIT,
      schema: {
        tags: ['platform-webhooks'],
        summary: "A target platform's own webhook (orders, show state), verified with that platform's scheme",
        description: '200 after the orders it carries are stored, or found to be another target\'s: on a platform account with several targets (the same seller, shop or organisation), each order is stored under one of them, whichever target\'s URL it reaches first or whichever reconciliation run sees it first (README "Targets that share a platform account"); 401 when the platform signature does not verify; 404 for an unknown target or a platform without webhooks; 503 (Retry-After) when the platform\'s API, read for the order the webhook names, is unavailable.',
        docResponses: {
          200: ok(
            "the orders it carries are stored (or another target's)",
            z.object({
              received: z.number().int(),
              stored: z.number().int().describe('of `received`, orders the ledger of this target now holds as sent (stored now, or held already with the same total and currency; a refund they carry applied)'),
              new: z.number().int().describe('of `stored`, orders not seen before'),
              conflicting: z
                .number()
                .int()
                .describe(
                  "of `received`, orders this target's ledger already held with another total or currency: the ledger keeps the total it stored first (entries are append-only and no correction entry is made: a platform's order updates carry no order of their own, so a retried earlier update would undo a later one; docs/attribution.md), a refund they carry is applied to it, and reconciliation reports the difference against the platform's report as an amount_mismatch. Logged and counted in syndicast_platform_order_conflicts_total",
                ),
              conflictingOrders: z
                .array(z.object({ orderId: z.string(), ledgerTotal: MoneyDoc, platformTotal: MoneyDoc }))
                .describe(`the first ${CONFLICTING_ORDERS_LISTED} of the conflicting orders: the total the ledger keeps and the one this webhook sent (minor units)`),
              otherTargetOrders: z.number().int().describe("of `received`, orders another target on the same platform account counts: not stored under this target (that target stores them, from its own webhook or its reconciliation)"),
            }),
          ),
          400: 'the platform adapter rejects the payload: not the documented shape (TikTok Shop, Whatnot; a Bambuser webhook that verifies is acknowledged 200 whatever its body, nothing stored: Bambuser retries until a 200, and none of its topics carries orders), an amount that is not exact in minor units (a decimal string beyond the currency\'s exponent, past 2^53 − 1 minor units, or negative), a time that is not an RFC 3339 date-time with an offset (or the platform\'s unix seconds) from 1970 to a year ahead, or an order id with a lone surrogate, or one new to the ledger of the target the order is stored under with a control or format character (Unicode Cc, Cf: bidi controls, zero-width characters) (`orders.N.orderId`); nothing is stored',
          401: "the platform's signature does not verify, or the target lacks what verifies it (the detail says only that; the fix is logged for ops)",
          404: 'unknown target, or its platform sends no webhooks',
          413: 'body over 1 MiB',
          503: "the platform's API, read for the order a webhook names (TikTok Shop), is down, rate-limited or refuses the target's token: nothing stored, retry after Retry-After",
          415: 'a compressed body (a Content-Encoding other than identity); every media type is read (as raw bytes)',
        },
      },
    },
    async (req, reply) => {
      const { targetId } = req.params;
      if (!ID_PATTERN.test(targetId)) throw notFound(`target ${targetId}`);
      const partnerId = await opts.partners.targetOwner(targetId);
      const target = partnerId ? await opts.partners.getTarget(partnerId, targetId) : null;
      if (!partnerId || !target) throw notFound(`target ${targetId}`);
      const adapter = opts.syncService.adapterFor(target);
      if (!adapter?.handleWebhook) throw notFound(`webhooks for target ${targetId} (${target.platform} sends none)`);

      // Header names come from the caller: a prototype-less record (src/lib/id-record.ts).
      const headers = idRecord<string | undefined>();
      for (const [k, v] of Object.entries(req.headers)) headers[k] = Array.isArray(v) ? v.join(', ') : v;
      const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      let orders;
      try {
        orders = await adapter.handleWebhook(headers, raw);
      } catch (err) {
        if (err instanceof WebhookAuthError) {
          // The fix for a target that lacks what verifies its webhooks goes to ops, not to the caller
          // (anyone who has the URL): it names the partner, the target and its credential fields.
          if (err.advice) req.log.warn({ partnerId, targetId, platform: target.platform, advice: err.advice }, `platform webhook: ${err.message}`);
          throw unauthorized(err.message);
        }
        if (isTargetError(err) && err.kind === 'permanent') throw new AppError(400, 'Bad Request', `${target.platform} webhook rejected: ${err.message}`);
        // A webhook that names an order only (TikTok Shop) is read from the platform's API before
        // anything is stored: that API down, rate-limited or refusing our token is a dependency that
        // is down, not a bug. Nothing was stored; the platform retries the webhook on a non-2xx.
        if (isTargetError(err)) {
          req.log.warn({ targetId, platform: target.platform, kind: err.kind, reason: err.reason, err: { message: err.message } }, 'platform webhook: its order could not be read from the platform');
          throw platformUnavailable(target.platform, err);
        }
        throw err;
      }
      // One treatment for a bad amount or date wherever it is found: the adapter's parse (400 above) or
      // the ledger's bounds (a negative total, a time before 1970 or a year ahead): 400, nothing stored.
      // Answering 200 `stored: 0` told the platform its order was taken while none was.
      // Checked here for what no target's ledger takes; an id with a control or format character only
      // once it is known whose the order is (below): a held one is taken by the target that holds it.
      const refuse = (problems: FieldError[]): void => {
        if (problems.length > 0) throw new AppError(400, 'Bad Request', `${target.platform} webhook rejected: an order it carries cannot be stored`, problems);
      };
      refuse(await opts.attribution.platformOrderProblems(partnerId, targetId, orders, () => false));
      // Another target's order is left to it; one that is this target's is claimed for it (when it has
      // to be) before it is stored: a failure between the two leaves the claim, and the retried webhook stores it.
      const { mine, others } = await opts.accounts.webhookOrders(target, orders, adapter);
      // This target's orders: an id with a control or format character is taken only when its ledger
      // holds it. Another target's order is not looked up in this one's ledger: target B holding
      // 'SO\u200E1001', the account's webhook at A's URL was refused whole, A's own orders with it.
      const kept = new Set(mine);
      refuse(await opts.attribution.platformOrderProblems(partnerId, targetId, orders, (p) => kept.has(p)));
      const outcomes = await opts.attribution.ingestPlatformOrders(partnerId, targetId, mine, 'webhook');
      // An order the ledger held with another total is not "stored" as sent: the answer says which (first write wins).
      const conflicting = outcomes.filter((o) => o.conflict !== undefined);
      const stored = outcomes.filter((o) => o.conflict === undefined);
      return reply.status(200).send({
        received: orders.length,
        stored: stored.length,
        new: stored.filter((o) => o.isNew).length,
        otherTargetOrders: others,
        conflicting: conflicting.length,
        conflictingOrders: conflicting.slice(0, CONFLICTING_ORDERS_LISTED).map((o) => ({ orderId: o.orderId, ledgerTotal: o.conflict!.ledgerTotal, platformTotal: o.conflict!.reportedTotal })),
      });
    },
  );
};

/** 503 with Retry-After: the platform's own wait when it gave one (429, quota), else 5 s. The platform's message goes to the log only. */
function platformUnavailable(platform: string, err: TargetError): AppError {
  const delayMs = 'delayMs' in err && typeof err.delayMs === 'number' ? err.delayMs : 5000;
  const retryAfter = String(Math.max(1, Math.ceil(delayMs / 1000)));
  return new AppError(503, 'Service Unavailable', `the ${platform} API could not be read for this webhook's order (${err.kind}); nothing was stored, retry later`, undefined, { 'retry-after': retryAfter });
}

/**
 * What each operation answers, for the OpenAPI document only (served at /docs, built by
 * plugins/docs.plugin.ts). A route lists its answers in `schema.docResponses`, which fastify never
 * reads: a `schema.response` would make fastify serialize the reply through that schema (dropping
 * fields it does not name, or failing the request on a mismatch), so bodies stay what the handlers
 * send. test/integration/openapi.test.ts checks the document (redocly lint, every route present with a
 * summary and a 2xx/3xx) and that real answers match the schemas given here.
 */
import { z } from 'zod';
import { DISCREPANCY_KINDS, DISCREPANCY_REASONS, RECON_STATUSES } from '../store/reconcile.repository.js';
import { PLATFORMS } from '../targets/target.adapter.js';

/** RFC 9457 problem details: every 4xx/5xx of this API (plugins/errors.plugin.ts). */
export const ProblemSchema = z.object({
  type: z.string().describe('A URI naming the kind of problem: https://syndicast.dev/problems/<title in lower case, dashes>, 5xx included'),
  title: z.string().describe('Short summary of the status, e.g. "Not Found"'),
  status: z.number().int().min(400).max(599).describe('The HTTP status, repeated'),
  detail: z.string().optional().describe('What went wrong in this request, in words'),
  instance: z.string().optional().describe('RFC 9457 member for the occurrence; not sent today (the `x-request-id` response header names the request)'),
  errors: z
    .array(z.object({ path: z.string().describe('e.g. `body.reconcileCron` or `querystring.limit`'), message: z.string() }))
    .optional()
    .describe('Field errors of a 400'),
});

/** One documented answer: a JSON body (zod), another media type, or none (204, 302). */
export interface DocResponse {
  description: string;
  /** JSON body (application/json unless `contentType` says otherwise). */
  schema?: z.ZodType;
  contentType?: string;
  /** Further media types of the same answer (e.g. text/csv). */
  also?: Record<string, z.ZodType>;
  headers?: Record<string, string>;
}

/**
 * Status → answer. A 4xx/5xx is given as its description (the body is always a Problem);
 * `false` drops an answer the docs plugin would otherwise add (400/413/415/401/503).
 */
export type DocResponses = Record<number, DocResponse | string | false>;

declare module 'fastify' {
  interface FastifySchema {
    /** Documentation only (see src/api/openapi.ts): fastify neither validates nor serializes by it. */
    docResponses?: DocResponses;
  }
}

export const ok = (description: string, schema?: z.ZodType, extra: Omit<DocResponse, 'description' | 'schema'> = {}): DocResponse => ({ description, ...(schema ? { schema } : {}), ...extra });

/** Common wording of the answers most routes share. */
export const FORBIDDEN_PARTNER = 'a partner key for another partner';
export const FORBIDDEN_ROLE = "the key's role may not do this";
/**
 * The body of an action that takes none (a rotation, a resync): nothing, or `{}` (clients that send
 * JSON with every request). A field is a 400 as on every other route: a route without a body schema
 * took `{"graceHours": 0}` on a secret's rotation with a 200, and the old secret kept verifying.
 */
export const NoBody = z.strictObject({}).nullish().describe('none (or {}): this operation takes no fields');

const Timestamp = z.string().describe('ISO-8601 timestamp');

/**
 * Free text an operator types (names of partners, targets and API keys; an endpoint's description):
 * shown in the ops console, the lists and the audit, where a NUL or an ESC was stored as sent. No
 * control characters (\p{Cc}: C0, DEL, C1); one line (tab and line ends refused too) unless
 * `multiline`, which keeps tab, CR and LF. Nor the explicit bidi embedding, override and isolate
 * controls U+202A-U+202E and U+2066-U+2069, the ones platform-text.ts removes from a partner's text:
 * an endpoint description of "\u202Eexample.com" was stored (201) and read reversed in the console
 * next to the endpoint's URL (an attack on npm start, 2026-12-07). Right-to-left letters and the
 * implicit marks U+200E, U+200F, U+061C are text and kept. The operator is at the keyboard, so a 400
 * naming the field (a partner's event text, by contrast, is kept as sent and made fit where it
 * leaves: src/targets/platform-text.ts).
 */
export function operatorText(max: number, multiline = false): z.ZodString {
  const unsafe = multiline ? /(?![\t\n\r])\p{Cc}/u : /\p{Cc}/u;
  const message = multiline ? 'must not hold control characters (U+0000-U+001F but tab and line ends, U+007F-U+009F)' : 'must not hold control characters (U+0000-U+001F, U+007F-U+009F: tab and line ends too)';
  return z
    .string()
    .max(max)
    .refine((s) => !unsafe.test(s), message)
    .refine((s) => !BIDI_CONTROL.test(s), 'must not hold bidi control characters (U+202A-U+202E, U+2066-U+2069: they make the text read in another order than it is written)');
}

/** The explicit bidi embedding, override and isolate controls (operatorText). */
const BIDI_CONTROL = /[\u202a-\u202e\u2066-\u2069]/u;

/** An operator's name for a partner or a target: 1-200 characters, one line (operatorText). */
export const NameSchema = operatorText(200).min(1);

export const PartnerSchema = z.object({
  id: z.string(),
  name: z.string(),
  attributionWindowHours: z.number().int(),
  reconcileCron: z.string(),
  reconcileLookbackDays: z.number().int(),
  createdAt: Timestamp,
});

export const ApiKeySchema = z.object({
  id: z.string(),
  role: z.enum(['admin', 'operator', 'viewer', 'partner']),
  partnerId: z.string().nullable(),
  name: z.string().nullable(),
  createdAt: Timestamp,
  expiresAt: Timestamp.nullable(),
  revokedAt: Timestamp.nullable(),
  lastUsedAt: Timestamp.nullable(),
  status: z.enum(['active', 'expired', 'revoked']),
});

export const TargetSchema = z.object({
  id: z.string(),
  partnerId: z.string(),
  platform: z.enum(PLATFORMS),
  name: z.string(),
  baseUrl: z.string().optional().describe("the platform API's base URL when not the platform's own; a viewer key gets it masked as an endpoint's url is, but its path's shape kept (the segments before the first token-like one; that one on and the last segment as `***`)"),
  commissionRateBps: z.number().int(),
  enabled: z.boolean(),
  pinDelayMs: z.number().int(),
  rateLimit: z.object({ requests: z.number().int(), windowMs: z.number().int() }).optional(),
  createdAt: Timestamp,
  updatedAt: Timestamp,
  hasCredentials: z.literal(true).describe('credentials are stored sealed and never returned'),
});

/** What a viewer key is told of an endpoint's `url` (GET …/endpoints, GET /v1/ops/endpoints). */
export const ENDPOINT_URL_DESCRIPTION =
  "the endpoint's URL; a viewer key gets it without what may authenticate it (maskUrl, path hidden: scheme, port, the host's registrable part and the query's keys kept; user:password, every query value, the fragment, a host label that looks like a token (Pipedream's `eo….m.pipedream.net`), and the whole path but a bare `/` as `***`: `https://hooks.slack.com/***`, `https://hooks.example.com/***?token=***`, `https://***.m.pipedream.net/`, `https://webhook.site/***`), operator, admin and the partner's own key get it whole, as registered";

export const EndpointSchema = z.object({
  id: z.string(),
  partnerId: z.string(),
  url: z.string().describe(ENDPOINT_URL_DESCRIPTION),
  events: z.array(z.string()),
  description: z.string().nullable(),
  enabled: z.boolean(),
  disabledAt: Timestamp.nullable(),
  disabledReason: z.string().nullable(),
  failingSince: Timestamp.nullable(),
  lastSuccessAt: Timestamp.nullable(),
  createdAt: Timestamp,
  updatedAt: Timestamp,
});

const TargetSummary = z.looseObject({
  targetId: z.string(),
  platform: z.enum(PLATFORMS),
  platformOrders: z.number().int().describe("the platform report's orders of the period, those this run compared or left to another target (the report is read over the period widened by RECONCILE_CLOCK_SKEW_MS on both sides): an order the ledger holds is the period's the ledger dates it in when the report dates it at most that margin away, else the report's period's; one the ledger lacks, the report's period's"),
  otherTargetOrders: z.number().int().describe("of platformOrders, those another target on the same platform account counts (the one that holds the order's platform show or already stores it, else the first to heal it): not compared or healed here, no discrepancies of this target; 0 in runs stored before it was counted"),
  ledgerOrders: z.number().int().describe("the target's platform-native orders in the ledger before this run's heals that this run compared (by the platformOrders rule: also one the ledger dates just outside the period, within RECONCILE_CLOCK_SKEW_MS of the report's date) or reports missing_in_platform (dated in the period, named by no report order); an order the ledger and the report date further apart than the margin across a boundary is counted by both periods' runs (missing in the ledger's, compared in the report's)"),
  discrepancies: z.number().int(),
  healed: z.number().int(),
  error: z.string().optional().describe("the platform's report could not be read (whole or in part): this target's findings are not reported, nor the heals earlier runs of the period made for it (this run confirmed none); only orders this run healed before the failure are listed (in this attempt or an interrupted earlier one of the same run)"),
});
const Summary = z
  .looseObject({
    targets: z.array(TargetSummary).describe('one entry per target with an order report'),
    discrepancies: z.number().int(),
    healed: z.number().int(),
    skippedTargets: z.array(z.string()).describe('targets whose platform has no order report'),
  })
  .describe('totals compared per target, and the discrepancy counts');
export const DiscrepancySchema = z.looseObject({
  kind: z.enum(DISCREPANCY_KINDS),
  targetId: z.string(),
  orderId: z.string().describe("the platform's order id"),
  detail: z.string().describe('what differs, in words'),
  healed: z.boolean().describe('the ledger was corrected by a new entry (the order or refund added from the report, marked as a heal)'),
  reason: z.enum(DISCREPANCY_REASONS).optional().describe('set when the money was not compared: another currency (no FX), a code that is not ISO 4217, or an order the ledger does not store (invalid_order: a negative amount, a time over a year ahead, or an order the platform\'s report names in a form that cannot be read, e.g. sku lines in two currencies, a second copy of an order id in other data, an amount, currency or date that cannot be read: such an order without a date is reported by every run whose report lists it)'),
});
export const ReconciliationSchema = z.object({
  id: z.string(),
  partnerId: z.string(),
  status: z.enum(RECON_STATUSES),
  trigger: z.enum(['manual', 'scheduled']),
  from: Timestamp,
  to: Timestamp,
  createdAt: Timestamp,
  completedAt: Timestamp.nullable().optional(),
  summary: Summary.nullable().optional().describe('null until the run has finished (and on a run that failed for good)'),
  error: z.string().optional().describe('a failed run: why (no target report could be read, or the run failed on every attempt; the cause is in the service logs)'),
});

/**
 * Known mutants (issue 13): one-line breaks of production code that once passed the whole suite.
 * Each must now make at least one of its tests fail ("killed"). For each mutant this applies the
 * change to the working tree, runs the named test files (`npm test -- <files> [-t <name>]`), and
 * restores the file — also on Ctrl-C or a crash of the test run.
 *
 *   npm run test:mutants                 # all of them (heavy: run under flock /tmp/syndicast-heavy.lock)
 *   npm run test:mutants -- <name> ...   # some of them
 *   npm run test:mutants -- --list       # names, files and the one-line change
 *
 * The list is documented in docs/testing.md (mutation → failing test → command). When code moves,
 * `from` no longer matches exactly once and the mutant reports "stale": update it with the code.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

export interface KnownMutant {
  name: string;
  /** What the break means, in a few words. */
  what: string;
  file: string;
  /** Text that occurs exactly once in `file`... */
  from: string;
  /** ...and what it becomes. */
  to: string;
  /** Test files that must fail (at least one test) with the mutant applied. */
  tests: string[];
  /** Optional `-t` filter: the test(s) that kill it. */
  testName?: string;
}

export const KNOWN_MUTANTS: KnownMutant[] = [
  {
    name: 'tenancy-reconciliation',
    what: 'GET /v1/reconciliations/{id} without the partner-access check',
    file: 'src/api/routes/reconcile.routes.ts',
    from: 'assertPartnerAccess(req, rec.partnerId);',
    to: '',
    tests: ['test/integration/tenancy.matrix.test.ts'],
    testName: 'partner-read routes',
  },
  {
    name: 'tenancy-message',
    what: 'GET /v1/partners/{p}/messages/{id} without the partner-access check',
    file: 'src/api/routes/outbound.routes.ts',
    from: "async (req) => {\n    assertPartnerAccess(req, req.params.partnerId);\n    const m = await outbound.message(",
    to: 'async (req) => {\n    const m = await outbound.message(',
    tests: ['test/integration/tenancy.matrix.test.ts'],
    testName: 'partner-read routes',
  },
  {
    name: 'tenancy-endpoint',
    what: 'GET /v1/partners/{p}/endpoints/{id} without the partner-access check',
    file: 'src/api/routes/outbound.routes.ts',
    from: 'async (req) => {\n    assertPartnerAccess(req, req.params.partnerId);\n    return publicEndpoint(',
    to: 'async (req) => {\n    return publicEndpoint(',
    tests: ['test/integration/tenancy.matrix.test.ts'],
    testName: 'partner-read routes',
  },
  {
    name: 'hold-in-hours',
    what: 'commission hold counted in hours instead of days',
    file: 'src/attribution/attribution.service.ts',
    from: 'return this.deps.holdDays * 86_400_000;',
    to: 'return this.deps.holdDays * 3_600_000;',
    tests: ['test/integration/time-constants.test.ts'],
  },
  {
    name: 'show-inbox-ttl-in-seconds',
    what: 'show-event inbox (webhook-id dedupe) TTL in seconds instead of days',
    file: 'src/main/runtime.ts',
    from: 'new ShowRepository(redis, keys, config.inboxTtlDays * 86_400, box)',
    to: 'new ShowRepository(redis, keys, config.inboxTtlDays, box)',
    tests: ['test/integration/time-constants.test.ts'],
  },
  {
    name: 'order-inbox-ttl-in-seconds',
    what: 'order-event inbox (webhook-id dedupe) TTL in seconds instead of days',
    file: 'src/main/runtime.ts',
    from: 'new OrderEventRepository(redis, keys, config.inboxTtlDays * 86_400)',
    to: 'new OrderEventRepository(redis, keys, config.inboxTtlDays)',
    tests: ['test/integration/time-constants.test.ts'],
  },
  {
    name: 'message-ttl-in-seconds',
    what: 'outbound message / idempotency-key TTL in seconds instead of days',
    file: 'src/outbound/outbound.module.ts',
    from: 'messageTtlSec: config.inboxTtlDays * 86_400,',
    to: 'messageTtlSec: config.inboxTtlDays,',
    tests: ['test/integration/time-constants.test.ts'],
  },
  {
    name: 'report-refund-uncapped',
    what: 'the ledger aggregates (what reports read) count refunds beyond the order total',
    file: 'src/store/attribution.repository.ts',
    from: '  if rf > g then rf = g end\n',
    to: '',
    tests: ['test/integration/attribution.voids.test.ts'],
  },
  {
    name: 'report-order-refund-uncapped',
    what: 'reports count refunds beyond the order total for the orders of a partly covered day',
    file: 'src/attribution/attribution.report.ts',
    from: 'return Math.min(r.refunded, r.gross);',
    to: 'return r.refunded;',
    tests: ['test/integration/ledger.aggregates.property.test.ts'],
  },
  {
    name: 'order-view-refund-uncapped',
    what: 'the order view counts refunds beyond the order total',
    file: 'src/attribution/attribution.service.ts',
    from: 'refundedAmount: Math.min(s.refunded, s.gross),',
    to: 'refundedAmount: s.refunded,',
    tests: ['test/integration/attribution.voids.test.ts'],
  },
  {
    name: 'returned-not-void',
    what: 'a platform order reported `returned` no longer voids the order',
    file: 'src/attribution/attribution.service.ts',
    from: '|refunded|returned)$/i',
    to: '|refunded)$/i',
    tests: ['test/integration/attribution.voids.test.ts'],
  },
  {
    name: 'ssrf-no-benchmarking-range',
    what: 'SSRF guard without 198.18.0.0/15',
    file: 'src/lib/ssrf.ts',
    from: "  ['198.18.0.0', 15],\n",
    to: '',
    tests: ['test/unit/ssrf.ranges.test.ts'],
  },
  {
    name: 'ssrf-no-nat64-range',
    what: 'SSRF guard without 64:ff9b::/96 (NAT64)',
    file: 'src/lib/ssrf.ts',
    from: "  ['64:ff9b::', 96],\n",
    to: '',
    tests: ['test/unit/ssrf.ranges.test.ts'],
  },
  {
    name: 'no-keep-last-if-active',
    what: 'sync jobs deduplicated without BullMQ keepLastIfActive',
    file: 'src/queues/queues.ts',
    from: 'deduplication: { id: syncJobId(job), keepLastIfActive: true },',
    to: 'deduplication: { id: syncJobId(job) },',
    tests: ['test/integration/sync.race.test.ts'],
  },
  {
    name: 'no-version-recheck',
    what: 'sync() does not re-check the desired-state version its last save read when it is done',
    file: 'src/mirror/sync.service.ts',
    from: 'if (version === desired.version) {',
    to: 'if (true) {',
    tests: ['test/integration/sync.race.test.ts'],
  },
  {
    name: 'scheduler-without-reconcile',
    what: 'the scheduler role started without the per-partner reconciliation schedules',
    file: 'src/main/process.ts',
    from: 'reconcile: { partners: rt.partners, service: rt.reconcile },',
    to: '',
    tests: ['test/e2e/reconcile.scheduled.test.ts'],
  },
  {
    name: 'proto-pins-plain-object',
    what: "a new mirror's pins are a plain {} (a product id `__proto__` reads Object.prototype and the pin code writes onto it)",
    file: 'src/domain/mirror.ts',
    from: '    pins: idRecord(),',
    to: '    pins: {},',
    tests: ['test/e2e/proto-ids.test.ts'],
  },
  {
    name: 'proto-stored-pins-plain-object',
    what: "a stored mirror's pins stay the plain object JSON.parse made (`constructor` reads Object and that pin never reaches pinned)",
    file: 'src/domain/mirror.ts',
    from: '  m.pins = idRecord(m.pins);',
    to: '',
    tests: ['test/e2e/proto-ids.test.ts'],
  },
  {
    name: 'npm-start-worker-redis-client',
    what: 'npm start (api + workers in one process) serves HTTP with the worker Redis client (offline queue, no timeout): requests hang while Redis is down',
    file: 'src/main/process.ts',
    from: "createRuntime(config, roles.includes('api') ? 'api' : 'worker')",
    to: "createRuntime(config, roles.includes('api') && roles.length === 1 ? 'api' : 'worker')",
    tests: ['test/e2e/npm-start.redis-down.test.ts'],
  },
  {
    name: 'npm-start-repeated-signal',
    what: "the same SIGINT/SIGTERM delivered twice (Ctrl-C under npm: the group's copy and npm's forwarded one) taken as a second signal: exit 1 mid-shutdown",
    file: 'src/main/process.ts',
    from: '} else if (first?.signal === signal && Date.now() - first.at < REPEATED_SIGNAL_MS) {',
    to: '} else if (false) {',
    tests: ['test/e2e/npm-start.signals.test.ts'],
  },
  {
    name: 'webhook-id-per-show',
    what: 'the partner-wide webhook-id claim ignored: the same id for another show or order is stored as new',
    file: 'src/sources/ingest.service.ts',
    from: 'if (holder !== scope) return {',
    to: 'if (holder === null) return {',
    tests: ['test/integration/webhook-id.partner-wide.test.ts'],
  },
  {
    name: 'sweep-first-page-only',
    what: 'the sweep and the target kick read only the first page of the active set (the old 5,000 cap)',
    file: 'src/store/show.repository.ts',
    from: "page.push({ partnerId, showId, score: flat[i + 1]! });\n      }\n      if (page.length > 0) yield page;\n    } while (cursor !== '0');",
    to: "page.push({ partnerId, showId, score: flat[i + 1]! });\n      }\n      if (page.length > 0) yield page;\n    } while (false);",
    tests: ['test/integration/sweep.paging.test.ts'],
  },
  {
    name: 'enqueue-with-write',
    what: 'on the Redis Cluster path the sync-dispatch entry is written in parallel with the show write (a job can run before its own event is stored)',
    file: 'src/sources/ingest.service.ts',
    from: "    const stored = await this.deps.shows.ingest(partnerId, showId, webhookId, JSON.stringify(event), key, write);\n",
    to: "    const [stored] = await Promise.all([this.deps.shows.ingest(partnerId, showId, webhookId, JSON.stringify(event), key, write), this.deps.shows.markForSync(partnerId, showId, currentRequestId())]);\n",
    tests: ['test/integration/sync.enqueue-after-write.test.ts'],
    testName: 'each event is mirrored by the job it enqueued',
  },
  {
    name: 'endpoint-rotation-drops-previous',
    what: 'an endpoint secret rotation drops the previous secret instead of keeping it while its grace lasts: two rotations within the grace (a retried rotate) cut off the secret the partner still verifies with',
    file: 'src/store/outbound.scripts.ts',
    from: "if prev ~= '' and prevExp > now then older[#older + 1] = { sealed = prev, expiresAt = prevExp } end\n",
    to: '',
    tests: ['test/integration/outbound.test.ts'],
    testName: 'two rotations within the grace period',
  },
  {
    name: 'mark-active-with-write',
    what: 'on the Redis Cluster path the sweep entry (markActive) is written in parallel with the show write (a sweep can read the new score with the old, ended state and drop a show the write brings back)',
    file: 'src/sources/ingest.service.ts',
    from: "    const stored = await this.deps.shows.ingest(partnerId, showId, webhookId, JSON.stringify(event), key, write);\n",
    to: "    const [stored] = await Promise.all([this.deps.shows.ingest(partnerId, showId, webhookId, JSON.stringify(event), key, write), 'show' in event.data ? this.deps.shows.markActive(partnerId, showId) : Promise.resolve()]);\n",
    tests: ['test/integration/sync.enqueue-after-write.test.ts'],
    testName: 'the sweep entry',
  },
  {
    name: 'webhook-id-claim-ignored-in-lua',
    what: 'the one-step ingest (single Redis) ignores a webhook-id claimed for another show or order and stores the event as new',
    file: 'src/store/show.repository.ts',
    from: "if holder and holder ~= ARGV[1] then return {2, holder} end",
    to: 'if false then return {2, holder} end',
    tests: ['test/integration/webhook-id.partner-wide.test.ts'],
  },
  {
    name: 'dispatch-ack-before-jobs',
    what: 'the sync dispatcher acknowledges and deletes its entries before their jobs exist (a crash in between loses the syncs)',
    file: 'src/mirror/sync.dispatcher.ts',
    from: '    if (jobs.length > 0) await this.o.producer.enqueueBulk(jobs);\n    await this.o.redis.scDispatchAckDel(stream, DISPATCH_GROUP, ...entries.map(([id]) => id));',
    to: '    await this.o.redis.scDispatchAckDel(stream, DISPATCH_GROUP, ...entries.map(([id]) => id));\n    if (jobs.length > 0) await this.o.producer.enqueueBulk(jobs);',
    tests: ['test/integration/sync.dispatch.test.ts'],
  },
  {
    name: 'youtube-recovery-20-pages',
    what: 'the YouTube recovery lookup stops after 20 pages of 50 (a channel with more than 1,000 broadcasts gets a second one)',
    file: 'src/targets/youtube/youtube.adapter.ts',
    from: 'const MAX_RECOVERY_PAGES = 200;',
    to: 'const MAX_RECOVERY_PAGES = 20;',
    tests: ['test/integration/youtube.adapter.test.ts'],
    testName: 'recovery reads past 1,000 broadcasts',
  },
  {
    name: 'pin-tag-ignored',
    what: 'pin recovery matches a message by the product link alone (a re-pin adopts the earlier episode\'s message and is never posted)',
    file: 'src/targets/pin-tag.ts',
    from: 'return words.includes(linkUrl) && words.includes(tag);',
    to: 'return words.includes(linkUrl);',
    tests: ['test/integration/pin-recovery.test.ts'],
    testName: 'a re-pin of the same product whose attempt died before posting',
  },
  {
    name: 'facebook-pin-lookup-3-pages',
    what: 'the Facebook pin comment lookup stops after 3 pages of 100 (a busy show gets the pin comment twice)',
    file: 'src/targets/facebook/facebook.adapter.ts',
    from: 'const MAX_COMMENT_PAGES = 50;',
    to: 'const MAX_COMMENT_PAGES = 3;',
    tests: ['test/integration/pin-recovery.test.ts'],
    testName: 'through 350 newer comments',
  },
  {
    name: 'order-sweep-not-scheduled',
    what: 'the scheduled sweep leaves stored order events alone (no recovery for a lost or failed attribution job)',
    file: 'src/main/scheduler.ts',
    from: 'const orders = opts.orderSweep ? await opts.orderSweep.sweep() : null;',
    to: 'const orders = null;',
    tests: ['test/integration/order-events.recovery.test.ts'],
  },
  {
    name: 'order-event-not-marked-pending',
    what: 'an order event is stored without its pending mark (the sweep cannot find it)',
    file: 'src/store/show.repository.ts',
    from: "redis.call('HSET', KEYS[3], eventId, ARGV[4])",
    to: '',
    tests: ['test/integration/order-events.recovery.test.ts'],
  },
  {
    name: 'intent-no-settle',
    what: "a retry looks up (and repeats) another run's started step at once, while that attempt's request may still land",
    file: 'src/store/intent.repository.ts',
    from: 'if now < settled then return {3, tostring(settled - now)} end',
    to: '',
    tests: ['test/integration/intent-late-request.test.ts'],
    testName: 'adopted by the retry',
  },
  {
    name: 'intent-owner-head-backslash',
    what: "the intent scripts' head match takes an owner's escaped JSON text for the owner (x\\ stored, token x\\\\: owned)",
    file: 'src/store/intent.repository.ts',
    from: '"owner":"([^"\\\\\\\\]*)",',
    to: '"owner":"([^"]*)",',
    tests: ['test/integration/intent-owner-head.test.ts'],
    testName: 'JSON text is',
  },
  {
    name: 'attempt-no-deadline',
    what: "platform requests ignore the intent attempt's deadline (a stalled owner sends after a retry looked)",
    file: 'src/targets/platform-http.ts',
    from: 'if (deadline === undefined) return timeoutMs;',
    to: 'if (deadline !== 0) return timeoutMs;',
    tests: ['test/integration/intent-late-request.test.ts'],
    testName: 'deadline has passed',
  },
  {
    name: 'failed-mirror-reason-cleared',
    what: "a run that passes over a failed mirror (the sweep's, a later event's) clears its lastError: the board says failed with no reason",
    file: 'src/mirror/sync.service.ts',
    from: "if (mirror.state !== 'action_required' && mirror.state !== 'failed') mirror.lastError = null;",
    to: "if (mirror.state !== 'action_required') mirror.lastError = null;",
    tests: ['test/e2e/mirror.retry-budget.test.ts'],
    testName: 'which a later sync keeps',
  },
  // Recent code (issue 12, 2 Dec): delivery claim and fairness, redelivery, API key revocation, the
  // target 'deleting' mark, platform request limits, rule 1's precision, the ledger's rounding.
  {
    name: 'delivery-claim-not-exclusive',
    what: "a delivery's attempt claim is taken without NX: a worker that took over a job mid-attempt sends the message a second time at once",
    file: 'src/store/outbound-message.repository.ts',
    from: "token, 'PX', ttlMs, 'NX')) === 'OK';",
    to: "token, 'PX', ttlMs)) === 'OK';",
    tests: ['test/integration/outbound.lock-lost.test.ts'],
  },
  {
    name: 'delivery-not-due-ignored',
    what: "a delivery job run before its retry is due (deferred by a worker that took it over) is attempted at once instead of on the schedule",
    file: 'src/outbound/delivery.service.ts',
    from: 'return dueInMs > EARLY_SLACK_MS ?',
    to: 'return false ?',
    tests: ['test/integration/outbound.lock-lost.test.ts'],
    testName: 'retried on the schedule',
  },
  {
    name: 'delivery-fairness-after-claim',
    what: 'a job deferred for fairness is deferred only after it took the attempt claim and read the message (six Redis calls for a job that waits)',
    file: 'src/outbound/delivery.service.ts',
    from: 'if (wait) return wait;',
    to: 'if (wait && false) return wait;',
    tests: ['test/integration/outbound.fairness-rules.test.ts'],
  },
  {
    name: 'delivery-held-back-needs-no-slot',
    what: 'a job held back for fairness waits for a slot even when it needs none (message gone, delivery finished or superseded, endpoint disabled or deleted)',
    file: 'src/outbound/delivery.service.ts',
    from: "if (!d || d.run !== job.run || d.state !== 'pending' || enabled !== true) return null;",
    to: 'if (!d) return null;',
    tests: ['test/integration/outbound.fairness-rules.test.ts'],
    testName: 'needs no slot',
  },
  {
    name: 'delivery-parked-not-woken',
    what: "a job held back for a slot is not woken when its partner's slot frees: it waits for its fallback delay",
    file: 'src/outbound/delivery.service.ts',
    from: 'this.wakeParked(); // a slot freed',
    to: '// a slot freed',
    tests: ['test/integration/outbound.fairness-park.test.ts'],
    testName: 'as soon as',
  },
  {
    name: 'delivery-missing-job-not-woken',
    what: 'waking a parked job that no longer exists (removed) throws: the next parked job waits for its fallback delay instead of taking the free slot',
    file: 'src/outbound/delivery.worker.ts',
    from: 'if (err instanceof Error && notWaiting(err.message, String(job.id))) return false;',
    to: '',
    tests: ['test/integration/outbound.fairness-park.test.ts'],
    testName: 'no longer exists',
  },
  {
    name: 'delivery-fairness-share-off-by-one',
    what: 'a partner is deferred only once it holds more than its share of the attempts in flight',
    file: 'src/outbound/delivery.service.ts',
    from: 'if (held >= fair.share && ',
    to: 'if (held > fair.share && ',
    tests: ['test/integration/outbound.fairness-rules.test.ts'],
  },
  {
    name: 'delivery-fairness-always-share',
    what: 'a partner holding its share is deferred even with slots to spare (a lone burst waits)',
    file: 'src/outbound/delivery.service.ts',
    from: '&& this.inFlightTotal >= fair.slots - fair.share)',
    to: ')',
    tests: ['test/integration/outbound.fairness.test.ts'],
    testName: 'with slots to spare',
  },
  {
    name: 'delivery-slow-reserve-off-by-one',
    what: 'slow partners may take every slot but one more than `slots - reserve` (the reserve slot too)',
    file: 'src/outbound/delivery.service.ts',
    from: 'return slowHeld >= fair.slots - reserve ?',
    to: 'return slowHeld > fair.slots - reserve ?',
    tests: ['test/integration/outbound.fairness-rules.test.ts'],
  },
  {
    name: 'delivery-slow-not-remembered',
    what: 'a partner whose attempt took slowMs is not slow after it ended (its next attempt takes the reserve slot for another timeout)',
    file: 'src/outbound/delivery.service.ts',
    from: 'if (ended - nowMs >= this.slowMs()) this.slowUntil.set(',
    to: 'if (false) this.slowUntil.set(',
    tests: ['test/integration/outbound.fairness-rules.test.ts'],
  },
  {
    name: 'delivery-slow-in-flight-ignored',
    what: 'an attempt in flight for slowMs or longer does not make its partner slow (only an ended one does)',
    file: 'src/outbound/delivery.service.ts',
    from: 'return (this.inFlight.get(partnerId) ?? []).some((t) => nowMs - t >= slowMs);',
    to: 'return (this.inFlight.get(partnerId) ?? []).some((t) => nowMs - t >= slowMs && false);',
    tests: ['test/integration/outbound.fairness-rules.test.ts'],
  },
  {
    name: 'redeliver-not-due-now',
    what: "a redelivery of a delivery waiting for its retry promotes the job but leaves nextAttemptAt: the job is deferred back to it",
    file: 'src/outbound/outbound.service.ts',
    from: 'if (d.nextAttemptAt !== null) await this.deps.messages.saveDelivery(partnerId, messageId, { ...d, nextAttemptAt: new Date().toISOString() });',
    to: '',
    tests: ['test/integration/outbound.redeliver-now.test.ts'],
  },
  {
    name: 'apikey-revoke-record-kept',
    what: 'a revoke writes the key index only: the record authentication reads stays active (a revoked key still logs in)',
    file: 'src/store/apikey.repository.ts',
    from: "if (!rec.revokedAt) await this.redis.set(this.keys.apiKey(hash), JSON.stringify({ ...record, revokedAt: candidate }), 'XX');",
    to: '',
    tests: ['test/integration/apikey.revoke-order.test.ts'],
  },
  {
    name: 'apikey-revoke-not-once',
    what: 'the index compare-and-set overwrites an earlier revocation: parallel DELETEs each revoke, audit and answer their own revokedAt',
    file: 'src/store/apikey.repository.ts',
    from: "if type(at) == 'string' and at ~= '' then return {at, 0} end",
    to: '',
    tests: ['test/integration/audit.keys.test.ts'],
    testName: 'revocations of one key at once',
  },
  {
    name: 'target-deleting-save-guard-ignored',
    what: "a sync run's save ignores the target's 'being deleted' mark (it saves, and goes on to the platform, during the DELETE's last check)",
    file: 'src/store/show.repository.ts',
    from: 'if tonumber(delUntil) > tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000) then',
    to: 'if false then',
    tests: ['test/integration/targets.delete-onplatform-race.test.ts'],
    testName: 'its next save is refused while the mark holds',
  },
  {
    name: 'target-deleting-first-read-ignored',
    what: "a sync run that starts while its target carries the 'being deleted' mark goes on (until its first save refuses)",
    file: 'src/mirror/sync.service.ts',
    from: 'if (target.deleting !== undefined) await shows.checkTarget(partnerId, targetId);',
    to: 'if (false) await shows.checkTarget(partnerId, targetId);',
    tests: ['test/integration/targets.delete-onplatform-race.test.ts'],
    testName: 'finds the mark at its first read',
  },
  {
    name: 'target-deleting-expired-kept',
    what: "an expired 'being deleted' mark (a DELETE that crashed) is kept by the target's next change",
    file: 'src/store/partner.repository.ts',
    from: "if (tonumber(string.match(mark, '^%d+') or '0') or 0) <= now then",
    to: 'if false then',
    tests: ['test/integration/targets.delete-onplatform-race.test.ts'],
    testName: 'a mark a crashed DELETE left',
  },
  {
    name: 'platform-json-no-answer-cap',
    what: 'a platform answer past MAX_RESPONSE_BYTES (32 MiB) is read whole into memory by the hot-path client',
    file: 'src/targets/platform-http.ts',
    from: 'if (bytes > MAX_RESPONSE_BYTES) {',
    to: 'if (false) {',
    tests: ['test/integration/platform-http.slow-answer.test.ts'],
    testName: 'MAX_RESPONSE_BYTES',
  },
  {
    name: 'platform-json-idle-timeout-only',
    what: 'the hot-path platform request has no whole-exchange timer: an answer trickling in holds it for as long as it trickles',
    file: 'src/targets/platform-http.ts',
    from: '      if (timeout > 0) {\n        // The whole exchange',
    to: '      if (false) {\n        // The whole exchange',
    tests: ['test/integration/platform-http.slow-answer.test.ts'],
    testName: 'platformJson: an answer trickling in',
  },
  {
    name: 'platform-axios-idle-timeout-only',
    what: "the axios platform client's timeout is the socket's idle time again: an answer trickling in never times out",
    file: 'src/targets/platform-http.ts',
    from: 'if (req.timeout > 0 && !req.signal) req.signal = AbortSignal.timeout(req.timeout);',
    to: '',
    tests: ['test/integration/platform-http.slow-answer.test.ts'],
    testName: 'axios platform client: an answer trickling in',
  },
  {
    name: 'click-precision-ignored',
    what: "rule 1 compares an order stamped in whole seconds with its click's milliseconds: an order in the click's second is outside_window",
    file: 'src/domain/order.ts',
    from: 'const delta = Date.parse(order.createdAt) - Math.floor(Date.parse(click.at) / unit) * unit;',
    to: 'const delta = Date.parse(order.createdAt) - Date.parse(click.at);',
    tests: ['test/unit/attribution.order.test.ts'],
  },
  {
    name: 'ledger-bps-truncates',
    what: "the ledger's commission (Lua bps) rounds down instead of half up",
    file: 'src/store/attribution.repository.ts',
    from: 'return q * r + math.floor((rem * r + 5000) / 10000)',
    to: 'return q * r + math.floor((rem * r) / 10000)',
    tests: ['test/integration/attribution.rules.test.ts'],
    testName: 'several partial refunds',
  },
  {
    name: 'facebook-sim-no-schedule-lead',
    what: "the Facebook simulator accepts a scheduled start under 10 minutes ahead (Graph refuses it): an adapter that scheduled a start 9:59 out would pass",
    file: 'src/simulators/facebook.sim.ts',
    from: 'const MIN_SCHEDULE_LEAD_SEC = 10 * 60;',
    to: 'const MIN_SCHEDULE_LEAD_SEC = 0;',
    tests: ['test/integration/facebook.adapter.test.ts'],
    testName: 'under 10 minutes',
  },
  {
    name: 'relay-removal-not-recorded',
    what: "DELETE /v1/relay's compare-and-delete of the marker does not record the removal as unaudited: relay.removed is never written",
    file: 'src/store/relay.repository.ts',
    from: "    redis.call('HSET', KEYS[3], ARGV[1], cjson.encode(rec))\n",
    to: '',
    tests: ['test/integration/relay.presence.test.ts'],
    testName: 'DELETE /v1/relay',
  },
  {
    name: 'relay-missing-entry-not-written',
    what: 'only the DELETE /v1/relay that removed the relay writes its relay.removed entry: when that write failed, the retry (absent) never writes it',
    file: 'src/api/routes/relay.routes.ts',
    from: 'for (const r of undeployed.unaudited) {',
    to: "for (const r of undeployed.outcome === 'removed' ? undeployed.unaudited : []) {",
    tests: ['test/integration/relay.presence.test.ts'],
    testName: 'audit write failed',
  },
  {
    name: 'audit-record-once-not-once',
    what: "recordOnce ignores its once-mark: DELETE /v1/relay calls at once (or a retry) each write the removal's relay.removed entry",
    file: 'src/store/audit.repository.ts',
    from: "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end",
    to: '',
    tests: ['test/integration/relay.presence.test.ts'],
    testName: 'DELETE /v1/relay',
  },
  {
    name: 'tiktok-refresh-failure-not-unsent',
    what: "the TikTok client lets a failed token refresh (before the request) through unmarked: the pin's step stays started and the next attempt waits out the settle time",
    file: 'src/targets/tiktok/tiktok.client.ts',
    from: 'let { res, env } = await send(req, await accessToken().catch(neverSent));',
    to: 'let { res, env } = await send(req, await accessToken());',
    tests: ['test/integration/tiktok.refresh-unsent.test.ts'],
  },
  {
    name: 'tiktok-refresh-after-refusal-not-unsent',
    what: "the TikTok client lets a failed refresh after TikTok refused the access token through unmarked: the pin's step stays started and the next attempt waits out the settle time",
    file: 'src/targets/tiktok/tiktok.client.ts',
    from: '({ res, env } = await send(req, await refresh().catch(neverSent)));',
    to: '({ res, env } = await send(req, await refresh()));',
    tests: ['test/integration/tiktok.refresh-unsent.test.ts'],
    testName: 'TikTok refused',
  },
  {
    name: 'tiktok-promotion-link-not-single-request',
    what: 'promotion_link is no single-request step: an attempt that never sent it leaves it started, and the next waits out the settle time',
    file: 'src/targets/tiktok/tiktok.adapter.ts',
    from: '{ singleRequest: true },',
    to: '{ singleRequest: false },',
    tests: ['test/integration/tiktok.refresh-unsent.test.ts'],
  },
  {
    name: 'sweep-remove-unconditional',
    what: "the sweep removes a show from the active set whatever its score (plain ZREM): a resync or link marked after the sweep's read is dropped",
    file: 'src/mirror/sweep.service.ts',
    from: 'const removed = await this.shows.markInactive(partnerId, showId, score);',
    to: 'const removed = await this.shows.markInactive(partnerId, showId);',
    tests: ['test/integration/sweep.remove-race.test.ts'],
  },
  {
    name: 'mark-active-not-higher',
    what: "markActive scores with Redis's clock but not always above the previous score: two marks in one millisecond leave the score the sweep read",
    file: 'src/store/show.repository.ts',
    from: 'if amCur >= amScore then amScore = amCur + 1 end',
    to: '',
    tests: ['test/integration/sweep.remove-race.test.ts'],
    testName: 'raise the score|every mark changes',
  },
  {
    name: 'link-not-marked-after-change',
    what: "a link (PUT …/mirrors/{t}) marks the show active only before it changes the mirror: a sweep that read the show in between drops it",
    file: 'src/api/routes/shows.routes.ts',
    from: "await shows.markActive(partnerId, showId);\n      await app.audit(req, { action: 'mirror.linked'",
    to: "await app.audit(req, { action: 'mirror.linked'",
    tests: ['test/integration/sweep.remove-race.test.ts'],
    testName: 'a link whose first mark',
  },
  {
    name: 'resync-not-marked-after-change',
    what: 'a resync (POST …/resync) of a failed mirror marks the show active only before it retries the mirror: a sweep that read the show in between drops it',
    file: 'src/api/routes/shows.routes.ts',
    from: 'if (retried) await shows.markActive(partnerId, showId);',
    to: '',
    tests: ['test/integration/sweep.remove-race.test.ts'],
    testName: 'a resync whose first mark',
  },
  {
    name: 'target-deleting-first-read-worker-clock',
    what: "a sync run's first read decides on the worker's clock whether the 'being deleted' mark holds: a worker a minute fast runs past a fresh mark to its first save",
    file: 'src/mirror/sync.service.ts',
    from: 'if (target.deleting !== undefined) await shows.checkTarget(partnerId, targetId);',
    to: 'if (target.deleting !== undefined && parseInt(target.deleting, 10) > Date.now()) await shows.checkTarget(partnerId, targetId);',
    tests: ['test/integration/targets.deleting-clock.test.ts'],
  },
  {
    name: 'target-deleting-expired-drop-unreported',
    what: "updateTarget answers the record with the expired mark its CAS script dropped (the stored record and the answer differ)",
    file: 'src/store/partner.repository.ts',
    from: 'if (written?.markDropped && after) {',
    to: 'if (false && after) {',
    tests: ['test/integration/targets.deleting-clock.test.ts'],
    testName: 'drops a mark that expired',
  },
  {
    name: 'intent-corrupt-save-as-lease-lost',
    what: "the save scripts take a deferred done record they find unreadable for a step lost to another run (-1): the save reports a lost lease, not IntentCorruptError",
    file: 'src/store/show.repository.ts',
    from: 'elseif readable(raw) then',
    to: 'elseif true then',
    tests: ['test/integration/intent-owner-head.test.ts', 'test/integration/pin-last-save.sync.test.ts'],
    testName: 'unreadable',
  },
  {
    name: 'problem-title-no-reason-phrase',
    what: "a problem whose status has no entry in TITLES is titled \"Error\" (type …/problems/error) instead of Node's reason phrase",
    file: 'src/api/plugins/errors.plugin.ts',
    from: "const title = TITLES[status] ?? STATUS_CODES[status] ?? 'Error';",
    to: "const title = TITLES[status] ?? 'Error';",
    tests: ['test/unit/problem-type.test.ts'],
  },
  {
    name: 'missing-host-node-400',
    what: "Node's own Host check is left on: an HTTP/1.1 request without Host gets a bare 400 (empty body, no request id)",
    file: 'src/api/app.ts',
    from: 'http: { requireHostHeader: false },',
    to: 'http: { requireHostHeader: true },',
    tests: ['test/integration/events.input.test.ts'],
    testName: 'without Host',
  },
  {
    name: 'missing-host-accepted',
    what: 'an HTTP/1.1 request without Host is served (RFC 9112 §3.2 wants a 400)',
    file: 'src/api/app.ts',
    from: 'if (req.headers.host === undefined && req.raw.httpVersionMajor === 1 && req.raw.httpVersionMinor >= 1) {',
    to: 'if (false) {',
    tests: ['test/integration/events.input.test.ts'],
    testName: 'without Host',
  },
  {
    name: 'connect-unanswered',
    what: 'a CONNECT request gets its connection closed with no answer (no connect listener) instead of a 405 problem',
    file: 'src/api/app.ts',
    from: "app.server.on('connect', problemConnect);",
    to: '',
    tests: ['test/integration/events.input.test.ts'],
    testName: 'CONNECT',
  },
];

function runOne(m: KnownMutant): 'killed' | 'survived' | 'stale' {
  const path = resolve(m.file);
  const original = readFileSync(path, 'utf8');
  const count = original.split(m.from).length - 1;
  if (count !== 1) {
    console.error(`[${m.name}] stale: \`${m.from.slice(0, 60)}\` occurs ${count} times in ${m.file} (expected once): update the mutant with the code`);
    return 'stale';
  }
  const restore = (): void => writeFileSync(path, original);
  const onSignal = (): void => {
    restore();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    writeFileSync(path, original.replace(m.from, () => m.to));
    const args = ['test', '--', ...m.tests, ...(m.testName ? ['-t', m.testName] : [])];
    console.log(`[${m.name}] ${m.what}\n[${m.name}] npm ${args.join(' ')}`);
    const r = spawnSync('npm', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const out = `${r.stdout}\n${r.stderr}`;
    // A failing test is listed with ✕ when its file finishes; when the file then crashes (e.g. a
    // polluted Object.prototype breaking a timer callback) jest prints only the failures' ● headers.
    const failed = out.split('\n').filter((l) => /^\s+✕ /.test(l) || (/^\s+● /.test(l) && !/● Test suite failed to run/.test(l)));
    if (r.status !== 0 && failed.length > 0) {
      console.log(`[${m.name}] killed by:\n${failed.join('\n')}`);
      return 'killed';
    }
    if (r.status !== 0) {
      // A failure that is not a failing test (compile error, crash) does not count as a kill.
      console.log(`[${m.name}] SURVIVED (the run failed without a failing test):\n${out.slice(-3000)}`);
      return 'survived';
    }
    console.log(`[${m.name}] SURVIVED: every test passed with the mutant applied`);
    return 'survived';
  } finally {
    restore();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}

function main(argv: string[]): number {
  if (argv.includes('--list')) {
    for (const m of KNOWN_MUTANTS) console.log(`${m.name}\t${m.file}\t${m.what}\t${m.tests.join(' ')}${m.testName ? ` -t "${m.testName}"` : ''}`);
    return 0;
  }
  const unknown = argv.filter((a) => !KNOWN_MUTANTS.some((m) => m.name === a));
  if (unknown.length) {
    console.error(`unknown mutant(s): ${unknown.join(', ')} (see --list)`);
    return 2;
  }
  const chosen = argv.length ? KNOWN_MUTANTS.filter((m) => argv.includes(m.name)) : KNOWN_MUTANTS;
  const results = chosen.map((m) => ({ name: m.name, result: runOne(m) }));
  console.log('\nknown mutants:');
  for (const r of results) console.log(`  ${r.result.padEnd(8)} ${r.name}`);
  return results.every((r) => r.result === 'killed') ? 0 : 1;
}

// Run as a script (npm run test:mutants); imported (test/unit/known-mutants.fresh.test.ts), only the list.
if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) process.exitCode = main(process.argv.slice(2));

/**
 * Pre-show readiness: from READINESS_WINDOW_MS (30 min) before a scheduled show's start, the
 * scheduler checks each mirror so that trouble shows up while there is time to fix it, not at
 * go-live. Checks: the platform token (the cached access token is dropped and refreshed now, through
 * an authenticated read of the remote show), rate-limit / quota headroom for the show's planned pins,
 * the remote show exists and is in a startable state, the ingest address is there (platforms with
 * ingest), the operator link is done (platforms where an operator creates the show). The result is
 * stored next to the mirror (GET …/shows/{s} shows it) and sent to the partner as `mirror.updated`
 * with `readiness: {state: ready|warning|blocked, checks: [{name, ok, detail, action}]}` whenever it
 * changes. A failed check says exactly what to do (`action`).
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { DesiredShow } from '../domain/desired-state.js';
import { newMirror, type MirrorDoc } from '../domain/mirror.js';
import { mirrorUpdatedData } from '../outbound/mirror-updated.js';
import type { OutboundService } from '../outbound/outbound.service.js';
import type { Keys } from '../store/keys.js';
import { blockedForMs } from '../store/rate-limiter.js';
import type { PartnerRepository, TargetRecord } from '../store/partner.repository.js';
import { isUnreadableRecord, type RedisClient } from '../store/redis.js';
import type { ShowRepository } from '../store/show.repository.js';
import { RedisTokenStore } from '../store/token.repository.js';
import type { SecretBox } from '../lib/crypto.js';
import { keyPart, pathId } from '../lib/ids.js';
import { limiterId, PLATFORM_LIMITS, renewedAuthorizationPatch } from '../targets/target.registry.js';
import { isTargetError } from '../targets/target.errors.js';
import type { TargetAdapter } from '../targets/target.adapter.js';
import { PAGES_USE_CASE } from '../targets/facebook/facebook.errors.js';
import { LIVE_SHOPPING_USE_CASE } from '../targets/facebook/facebook.live-shopping.js';

export const READINESS_WINDOW_MS = 30 * 60_000;
const PLATFORM_NAMES: Record<string, string> = { youtube: 'YouTube', tiktok: 'TikTok Shop', whatnot: 'Whatnot', bambuser: 'Bambuser', facebook: 'Facebook' };

export type ReadinessState = 'ready' | 'warning' | 'blocked';
export interface ReadinessCheck {
  name: 'operator_link' | 'token' | 'remote_show' | 'ingest' | 'quota';
  ok: boolean;
  detail: string;
  /** What to do when not ok (null when ok). */
  action: string | null;
}
export interface Readiness {
  state: ReadinessState;
  checkedAt: string;
  checks: ReadinessCheck[];
}

export interface ReadinessDeps {
  redis: RedisClient;
  keys: Keys;
  box: SecretBox;
  shows: ShowRepository;
  partners: PartnerRepository;
  outbound: OutboundService;
  adapterFor: (t: TargetRecord) => TargetAdapter | null;
  /** Drops a cached adapter so that its in-memory token goes too (the check refreshes the token now). */
  forgetAdapter?: (targetId: string) => void;
  log: Logger;
  windowMs?: number;
}

export class ReadinessService {
  constructor(private readonly deps: ReadinessDeps) {}

  private key(partnerId: string, showId: string, targetId: string): string {
    return `${this.deps.keys.showTag(partnerId, showId)}:readiness:${targetId}`;
  }

  async get(partnerId: string, showId: string, targetIds: string[]): Promise<(Readiness | null)[]> {
    if (targetIds.length === 0) return [];
    const raws = await this.deps.redis.mget(...targetIds.map((t) => this.key(partnerId, showId, t)));
    return raws.map((r) => (r ? (JSON.parse(r) as Readiness) : null));
  }

  /** The scheduler's tick: every active scheduled show that starts within the window. */
  async sweep(now = Date.now()): Promise<{ checked: number }> {
    const windowMs = this.deps.windowMs ?? READINESS_WINDOW_MS;
    let checked = 0;
    for (const [partnerId, showId] of await this.deps.shows.activeShows()) {
      // One show whose records do not read (a hand-edited or half-migrated snapshot) is logged and
      // skipped: before, its error ended the tick and no show after it was checked, tick after tick.
      try {
        const desired = await this.deps.shows.desired(partnerId, showId);
        if (!desired || desired.state !== 'scheduled') continue;
        const startsIn = Date.parse(desired.scheduledAt) - now;
        if (startsIn > windowMs) continue;
        checked += (await this.checkShow(partnerId, desired)).length;
      } catch (err) {
        if (!isUnreadableRecord(err)) throw err;
        this.deps.log.error({ err, partnerId, showId }, 'readiness: show skipped, its stored records do not read');
      }
    }
    return { checked };
  }

  async checkShow(partnerId: string, desired: DesiredShow): Promise<Readiness[]> {
    const bundle = await this.deps.partners.bundle(partnerId);
    const targets = (bundle?.targets ?? []).filter((t) => t.enabled);
    const mirrors = await this.deps.shows.getMirrors(partnerId, desired.showId, targets);
    const out: Readiness[] = [];
    for (const [i, t] of targets.entries()) {
      const r = await this.check(desired, t, mirrors[i] ?? null);
      out.push(r);
      await this.publish(partnerId, desired, t, mirrors[i] ?? null, r);
    }
    return out;
  }

  async check(desired: DesiredShow, t: TargetRecord, m: MirrorDoc | null): Promise<Readiness> {
    const name = PLATFORM_NAMES[t.platform] ?? t.platform;
    const base = `/v1/partners/${pathId(t.partnerId)}`;
    const resync = `POST ${base}/shows/${pathId(desired.showId)}/mirrors/${pathId(t.id)}/resync`;
    // The whole body: a PATCH's credentials replace the target's (src/targets/credentials-advice.ts).
    // Made when a failed check needs it, once: it opens the target's credentials (a decryption), which
    // a check that passes has no use for.
    let fix: string | undefined;
    const fixCredentials = (): string => (fix ??= `Renew the ${name} authorization of target ${t.id} and save it: ${renewedAuthorizationPatch(t, this.deps.partners.credentialsIfOpen(t))}; then ${resync}`);
    const checks: ReadinessCheck[] = [];
    const warnings = new Set<ReadinessCheck['name']>();
    const adapter = this.deps.adapterFor(t);

    const link = adapter?.capabilities.createShow === 'operator_link';
    if (link && !m?.remote) {
      checks.push({ name: 'operator_link', ok: false, detail: `${name} shows are created by an operator; this one is not linked yet`, action: `Create the show on ${name} (scheduled for ${desired.scheduledAt}, title "${desired.title}"), then link it: PUT ${base}/shows/${pathId(desired.showId)}/mirrors/${pathId(t.id)} {"externalId": "<the ${name} show id>"}` });
    } else {
      checks.push({ name: 'operator_link', ok: true, detail: link ? `linked to ${m?.remote?.externalId}` : `not needed: Syndicast creates the ${name} show`, action: null });
    }

    // Token + remote show: an authenticated read of the remote show with a freshly refreshed token.
    if (!m?.remote) {
      const failed = m?.state === 'failed';
      checks.push({ name: 'token', ok: !failed, detail: failed ? `the mirror failed: ${m?.lastError ?? ''}` : 'checked once the remote show exists', action: failed ? fixCredentials() : null });
      if (!link) {
        checks.push({ name: 'remote_show', ok: false, detail: failed ? `not created: ${m?.lastError ?? 'failed'}` : `not created yet (mirror ${m?.state ?? 'pending'})`, action: failed ? `Fix the cause above, then ${resync}` : `Wait for the sync, or ${resync}` });
        if (!failed) warnings.add('remote_show');
      } else {
        checks.push({ name: 'remote_show', ok: false, detail: 'no linked show', action: 'See operator_link' });
      }
    } else if (adapter) {
      // Refresh now, not at go-live: the cached access token marked expired (Redis; the adapter's memo
      // goes with the adapter) before the call. Not cleared: a refresh token the platform rotated is in it.
      await new RedisTokenStore(this.deps.redis, this.deps.keys, this.deps.box, t.id).expireAccess();
      this.deps.forgetAdapter?.(t.id);
      const fresh = this.deps.adapterFor(t) ?? adapter;
      try {
        await fresh.attachShow(m.remote.externalId);
        checks.push({ name: 'token', ok: true, detail: `${name} accepted the target's authorization (token refreshed)`, action: null });
        const startable = m.state === 'ready' || m.state === 'live' || m.state === 'provisioning';
        checks.push({
          name: 'remote_show',
          ok: startable,
          detail: startable ? `${name} show ${m.remote.externalId} exists (mirror ${m.state})` : `${name} show ${m.remote.externalId} exists but the mirror is ${m.state}${m.lastError ? `: ${m.lastError}` : ''}`,
          action: startable ? null : `Fix the cause, then ${resync}`,
        });
      } catch (err) {
        const kind = isTargetError(err) ? err.kind : 'error';
        const msg = err instanceof Error ? err.message : String(err);
        if (kind === 'auth_expired' || kind === 'permanent' || kind === 'action_required') {
          const auth = kind === 'auth_expired' || /auth|token|credential|permission|401|403/i.test(msg);
          checks.push({ name: 'token', ok: !auth, detail: auth ? `${name} refused the target's authorization: ${msg}` : `${name} accepted the authorization`, action: auth ? fixCredentials() : null });
          if (!auth) checks.push({ name: 'remote_show', ok: false, detail: `${name} show ${m.remote.externalId}: ${msg}`, action: link ? `Create the show again on ${name} and link it: PUT ${base}/shows/${pathId(desired.showId)}/mirrors/${pathId(t.id)} {"externalId": "…"}` : `${resync} (a new remote show is created if it is gone)` });
          else checks.push({ name: 'remote_show', ok: false, detail: 'not checked: authorization refused', action: fixCredentials() });
        } else {
          checks.push({ name: 'token', ok: false, detail: `${name} did not answer: ${msg}`, action: `Nothing yet: checked again within a minute; if it persists, check ${name}'s status` });
          checks.push({ name: 'remote_show', ok: false, detail: 'not checked: the platform did not answer', action: 'Checked again within a minute' });
          warnings.add('token').add('remote_show');
        }
      }
    }

    if (adapter?.capabilities.ingest) {
      const ingest = m?.remote?.ingest;
      checks.push({ name: 'ingest', ok: !!ingest, detail: ingest ? `ingest address ${ingest.url}` : 'no ingest address yet', action: ingest ? null : m?.remote ? resync : 'Follows from the remote show' });
      if (!ingest && !m?.remote && !link && m?.state !== 'failed') warnings.add('ingest');
    } else {
      checks.push({ name: 'ingest', ok: true, detail: `not used: the creator streams to ${name} from its own app`, action: null });
    }

    // Headroom: a rate-limit block that outlasts the start, and the planned pins against the window.
    const limiter = limiterId(t.platform, this.deps.partners.openCredentials(t), t.id);
    // The account's block or that of a use case the show calls (a Facebook Page's Business Use Case
    // throttle: `pages` holds the live video and comments, `catalog_management` the pins when products
    // are planned); another use case's block (ads_management) holds none of its calls.
    const limit = t.rateLimit ?? PLATFORM_LIMITS[t.platform];
    const planned = desired.products.size;
    const blockedMs = await blockedForMs(this.deps.redis, this.deps.keys, limiter, planned > 0 ? [PAGES_USE_CASE, LIVE_SHOPPING_USE_CASE] : [PAGES_USE_CASE]);
    if (blockedMs > 0) {
      const until = new Date(Date.now() + blockedMs).toISOString();
      const pastStart = Date.now() + blockedMs > Date.parse(desired.scheduledAt);
      checks.push({ name: 'quota', ok: false, detail: `${name} rate limit or quota exhausted until ${until}`, action: pastStart ? `The block outlasts the start: raise the account's ${name} quota or move the show` : 'Clears before the start; nothing to do' });
      if (!pastStart) warnings.add('quota');
    } else if (limit && planned > limit.requests) {
      checks.push({ name: 'quota', ok: false, detail: `${planned} planned pins exceed ${limit.requests} requests per ${limit.windowMs} ms: pins will queue behind the limit`, action: `Spread the pins, or set a raised limit on the target: PATCH ${base}/targets/${pathId(t.id)} {"rateLimit": {…}}` });
      warnings.add('quota');
    } else {
      checks.push({ name: 'quota', ok: true, detail: limit ? `${planned} planned pins within ${limit.requests} requests per ${limit.windowMs} ms` : `no request window known for ${name}`, action: null });
    }

    const failing = checks.filter((c) => !c.ok);
    const state: ReadinessState = failing.length === 0 ? 'ready' : failing.every((c) => warnings.has(c.name)) ? 'warning' : 'blocked';
    return { state, checkedAt: new Date().toISOString(), checks };
  }

  private async publish(partnerId: string, desired: DesiredShow, t: TargetRecord, m: MirrorDoc | null, r: Readiness): Promise<void> {
    const showId = desired.showId;
    const key = this.key(partnerId, showId, t.id);
    await this.deps.redis.set(key, JSON.stringify(r), 'EX', 86_400);
    const fingerprint = createHash('sha256').update(JSON.stringify([r.state, r.checks.map((c) => [c.name, c.ok, c.action])])).digest('base64url').slice(0, 16);
    const data = { ...mirrorUpdatedData(showId, m ?? newMirror(t.id, t.platform, t.incarnation), { enabled: t.enabled, desired }), readiness: r };
    await this.deps.outbound.emit(partnerId, 'mirror.updated', data, readinessUpdatedKey(partnerId, showId, t.id, fingerprint));
    if (r.state !== 'ready') this.deps.log.info({ partnerId, showId, targetId: t.id, readiness: r.state, failing: r.checks.filter((c) => !c.ok).map((c) => c.name) }, 'mirror not ready for its show');
  }
}

/**
 * The idempotency key of a readiness mirror.updated: each id as keyPart (ids may contain ':', and show
 * `a:b` + target `c` and show `a` + target `b:c` were one key; review 2026-12-01 K2). Unchanged for ids
 * without '%', ':', '{', '}', so nothing claimed before an upgrade is sent again.
 */
export function readinessUpdatedKey(partnerId: string, showId: string, targetId: string, fingerprint: string): string {
  return `readiness:${keyPart(partnerId)}:${keyPart(showId)}:${keyPart(targetId)}:${fingerprint}`;
}

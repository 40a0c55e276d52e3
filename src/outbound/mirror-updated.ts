/**
 * `mirror.updated`: SyncService calls this after a mirror changed state, pins, remote id or error.
 *
 * Idempotency key `mirror:{partnerId}:{showId}:{targetId}:{hash}` where the hash covers the payload
 * plus what makes a recurring payload a new change: the desired-state version the mirror was synced
 * to, the mirror generation (bumped by a relink) and each pin's episode (bumped on every re-pin). So a
 * sync that runs twice for the same change (stalled job, duplicate event) reports it once, while
 * pin → unpin → pin reports the second pin again.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { DesiredShow } from '../domain/desired-state.js';
import { reportedEpisode, reportedPin, type MirrorDoc } from '../domain/mirror.js';
import { keyPart } from '../lib/ids.js';
import { pendingPinReason, viewLastError } from '../mirror/show.view.js';
import type { OutboundService } from './outbound.service.js';
import type { RelayStatus } from '../store/relay.repository.js';
import { TargetGoneError } from '../store/show.repository.js';

export interface MirrorUpdatedData {
  showId: string;
  targetId: string;
  platform: string;
  state: string;
  externalId: string | null;
  url: string | null;
  /** `reason`: as on the show view (pendingPinReason), why a `pending` pin waits. */
  pins: { productId: string; state: string; linkUrl: string | null; reason?: string }[];
  /** As on the show view: the target's switch (a disabled target's mirror is not synced). */
  enabled: boolean;
  /** As on the show view: a disabled target's unfinished mirror says so (viewLastError). */
  lastError: string | null;
}

/**
 * What the show view (src/mirror/show.view.ts) adds to the stored mirror, so that `mirror.updated`
 * carries the same fields: the target's `enabled`, and the show as desired (its pins' `reason`;
 * without it, as from a caller that has not read the show, no pin carries one).
 */
export interface MirrorViewContext {
  enabled: boolean;
  desired?: Pick<DesiredShow, 'state' | 'pinned' | 'products'>;
}

export function mirrorUpdatedData(showId: string, m: MirrorDoc, ctx: MirrorViewContext): MirrorUpdatedData {
  return {
    showId,
    targetId: m.targetId,
    platform: m.platform,
    state: m.state,
    externalId: m.remote?.externalId ?? null,
    url: m.remote?.url ?? null,
    pins: Object.entries(m.pins)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([productId, p]) => {
        // An attempt at a refused pin is still `failed` with its reason (reportedPin).
        const { state, reason: refusal } = reportedPin(p);
        const reason = refusal ?? (ctx.desired ? pendingPinReason(ctx.desired, productId, state) : undefined);
        return { productId, state, linkUrl: p.linkUrl ?? null, ...(reason ? { reason } : {}) };
      }),
    enabled: ctx.enabled,
    lastError: viewLastError(m.targetId, ctx.enabled, m),
  };
}

/**
 * The part of the payload the idempotency key's hash covers: the fields the payload had before
 * `enabled` and the pins' `reason` were added (both follow from the rest or from the target, and a
 * message claimed before an upgrade must keep its key, not be sent again).
 */
function keyedData(d: MirrorUpdatedData): Omit<MirrorUpdatedData, 'enabled'> {
  return {
    showId: d.showId,
    targetId: d.targetId,
    platform: d.platform,
    state: d.state,
    externalId: d.externalId,
    url: d.url,
    pins: d.pins.map((p) => ({ productId: p.productId, state: p.state, linkUrl: p.linkUrl })),
    lastError: d.lastError,
  };
}

/** The ids as keyPart like relayUpdatedKey's (here the hash covers show and target too). */
export function mirrorUpdatedKey(partnerId: string, showId: string, m: MirrorDoc, data: MirrorUpdatedData = mirrorUpdatedData(showId, m, { enabled: true })): string {
  const episodes = Object.entries(m.pins)
    .sort(([a], [b]) => a.localeCompare(b))
    // A refused pin asked again: the episode first reported (each attempt is a new one; reportedEpisode).
    .map(([productId, p]) => [productId, reportedEpisode(p)]);
  const hash = createHash('sha256')
    .update(JSON.stringify({ data: keyedData(data), v: m.syncedVersion, g: m.generation, e: episodes }))
    .digest('base64url')
    .slice(0, 22);
  return `mirror:${keyPart(partnerId)}:${keyPart(showId)}:${keyPart(m.targetId)}:${hash}`;
}

/**
 * The SyncService `onMirrorChanged` hook. A failure propagates: SyncService records what it
 * reported on the mirror, so the job's retry reports it again (platform calls are not repeated:
 * intents and the mirror state make the re-run a no-op).
 */
export function mirrorUpdatedHook(outbound: Pick<OutboundService, 'emitMade'>, log: Logger) {
  return async (partnerId: string, showId: string, mirror: MirrorDoc, ctx: MirrorViewContext, before?: () => Promise<void>): Promise<void> => {
    try {
      // Payload and key are made only when an endpoint subscribes (the mirror as it is now: the
      // caller changes it only after this settled); `before` (the target still exists) runs then too.
      await outbound.emitMade(
        partnerId,
        'mirror.updated',
        () => {
          const data = mirrorUpdatedData(showId, mirror, ctx);
          return { data, idempotencyKey: mirrorUpdatedKey(partnerId, showId, mirror, data) };
        },
        before,
      );
    } catch (err) {
      if (err instanceof TargetGoneError) throw err; // the sync stops quietly (SyncService)
      log.warn({ err, partnerId, showId, targetId: mirror.targetId }, 'could not emit mirror.updated; the sync will retry');
      throw err;
    }
  };
}

/**
 * `mirror.updated` for a change of the mirror's relay state (README "Video relay"): the mirror as last read
 * plus `relay`. Sent on state changes only (not for byte counts); the key covers the state, when it
 * was entered and the restart count, so a relay process that reports the same change twice (a lease
 * takeover re-reporting) sends it once.
 */
/**
 * Each id as keyPart (ids may contain ':': show `a:b` + target `c` and show `a` + target `b:c` were one
 * key, so the second mirror's message was taken for a duplicate; review 2026-12-01 K2). The same key as
 * before for ids without '%', ':', '{', '}', so nothing claimed before an upgrade is sent again.
 */
export function relayUpdatedKey(partnerId: string, showId: string, targetId: string, hash: string): string {
  return `relay:${keyPart(partnerId)}:${keyPart(showId)}:${keyPart(targetId)}:${hash}`;
}

export function relayUpdatedHook(outbound: Pick<OutboundService, 'emit'>) {
  return async (partnerId: string, showId: string, mirror: MirrorDoc, relay: RelayStatus, ctx: MirrorViewContext): Promise<void> => {
    const data = { ...mirrorUpdatedData(showId, mirror, ctx), relay };
    const hash = createHash('sha256')
      .update(JSON.stringify([relay.state, relay.since, relay.restarts, relay.lastError]))
      .digest('base64url')
      .slice(0, 22);
    await outbound.emit(partnerId, 'mirror.updated', data, relayUpdatedKey(partnerId, showId, mirror.targetId, hash));
  };
}

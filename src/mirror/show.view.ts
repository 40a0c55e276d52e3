/** The show status document of README / OpenAPI at /docs: desired show + one entry per mirror. */
import type { DesiredShow } from '../domain/desired-state.js';
import { reportedPin, type MirrorDoc, type MirrorState, type PinState } from '../domain/mirror.js';
import type { TargetRecord } from '../store/partner.repository.js';
import type { Platform } from '../targets/target.adapter.js';
import type { RelayStatus } from '../store/relay.repository.js';
import type { Readiness } from './readiness.service.js';

/** What the view may show of the video relay (README "Video relay"); stream keys only to who may see them. */
export interface RelayViewInput {
  /** The show's own ingest; `streamKey` absent for callers who may not see it (viewer keys). */
  ingest: { url: string; streamKey?: string; streamKeyUnreadable?: true };
  /** Each target's relay status, in the order of `targets`. */
  relay: (RelayStatus | null)[];
  /** Each mirror's ingest (platform's or operator's), in the order of `targets`. */
  mirrorIngest: ({ url: string; streamKey: string } | { url: string; streamKeyUnreadable: true } | undefined)[];
  /** Operator and admin keys see mirror stream keys; viewer and partner keys the url alone (the external contract §2). */
  revealMirrorKeys: boolean;
}

const IDLE: RelayStatus = { state: 'idle', bitrateKbps: 0, bytesSent: 0, since: '', restarts: 0, lastError: null };

export type MirrorView = {
  targetId: string;
  platform: Platform;
  state: MirrorState;
  externalId: string | null;
  url: string | null;
  ingest?: { url: string; streamKey?: string; streamKeyUnreadable?: true };
  relay: Omit<RelayStatus, 'since'> & { since: string | null };
  /** `reason`: why a pin stays `pending` where the mirror cannot act on it yet (pinReason), or why a `failed` pin was refused (refusedPinReason). */
  pins: { productId: string; state: PinState; linkUrl: string | null; reason?: string }[];
  /** The target's own switch: a disabled target's mirror is not synced, whatever its `state` says. */
  enabled: boolean;
  lastError: string | null;
  updatedAt: string | null;
  /** Pre-show readiness (from 30 min before the start; src/mirror/readiness.service.ts). */
  readiness?: Readiness;
};

/**
 * A pin of a product the show's snapshot does not have waits for the partner to send the product
 * (`product.updated`, or a snapshot that lists it): the sync cannot pin what it cannot describe.
 */
export function pinReason(productId: string): string {
  return `product ${productId} is not in the show's snapshot: it is pinned when the partner sends the product (product.updated or a show snapshot that lists it)`;
}

/**
 * The mirror of a disabled target is not synced (src/mirror/sync.service.ts skips it) until the
 * target is enabled again, so an error of its last run ("retrying in 3 s: …") is stale: this says
 * why it does not move instead. The stored mirror keeps its error; the timeline keeps the runs.
 */
/**
 * The `reason` a pin of the view (and of `mirror.updated`) carries: a `pending` pin the partner has
 * pinned, while the show still wants pins, of a product its snapshot does not have; undefined otherwise.
 */
export function pendingPinReason(desired: Pick<DesiredShow, 'state' | 'pinned' | 'products'>, productId: string, state: string): string | undefined {
  const pinsStillWanted = desired.state === 'live' || desired.state === 'scheduled';
  return pinsStillWanted && state === 'pending' && desired.pinned.has(productId) && !desired.products.has(productId) ? pinReason(productId) : undefined;
}

/** The view's `lastError`: a disabled target's unfinished mirror says why it does not move (disabledTargetNote). */
export function viewLastError(targetId: string, enabled: boolean, m: Pick<MirrorDoc, 'state' | 'lastError'> | null): string | null {
  const state = m?.state ?? 'pending';
  const over = state === 'ended' || state === 'cancelled';
  return !enabled && !over ? disabledTargetNote(targetId) : (m?.lastError ?? null);
}

export function disabledTargetNote(targetId: string): string {
  return `target ${targetId} is disabled: this mirror is not synced until the target is enabled again (PATCH its enabled to true)`;
}

export function showView(desired: DesiredShow, targets: TargetRecord[], mirrors: (MirrorDoc | null)[], video: RelayViewInput, readiness: (Readiness | null)[] = []) {
  const show = {
    id: desired.showId,
    title: desired.title,
    description: desired.description,
    scheduledAt: desired.scheduledAt,
    state: desired.state,
    sourceUrl: desired.sourceUrl,
    products: [...desired.products.values()],
    pinnedProductIds: [...desired.pinned].sort(),
    version: desired.version,
    ingest: video.ingest,
  };
  const views: MirrorView[] = [];
  targets.forEach((t, i) => {
    const m = mirrors[i];
    if (!m && !t.enabled) return;
    const pins = new Map<string, MirrorView['pins'][number]>();
    for (const [productId, p] of Object.entries(m?.pins ?? {})) {
      // An attempt at a refused pin is still `failed` with its reason (reportedPin).
      const { state, reason } = reportedPin(p);
      pins.set(productId, { productId, state, linkUrl: p.linkUrl ?? null, ...(reason !== undefined ? { reason } : {}) });
    }
    const pinsStillWanted = desired.state === 'live' || desired.state === 'scheduled';
    // A link that is shown must work: a pin the mirror has not taken up yet has no link record,
    // so its tracked URL would answer 404 — it is listed without one until the sync creates it.
    for (const productId of pinsStillWanted ? desired.pinned : []) {
      if (!pins.has(productId)) pins.set(productId, { productId, state: 'pending', linkUrl: null });
      const pin = pins.get(productId)!;
      const reason = pendingPinReason(desired, productId, pin.state);
      if (reason) pin.reason = reason;
    }
    const state = m?.state ?? 'pending';
    const ingest = video.mirrorIngest[i];
    const relay = video.relay[i] ?? IDLE;
    views.push({
      targetId: t.id,
      platform: t.platform,
      state,
      externalId: m?.remote?.externalId ?? null,
      url: m?.remote?.url ?? null,
      ...(ingest && (state === 'ready' || state === 'live') ? { ingest: video.revealMirrorKeys ? ingest : { url: ingest.url } } : {}),
      relay: { ...relay, since: relay.since || null },
      pins: [...pins.values()].sort((a, b) => a.productId.localeCompare(b.productId)),
      enabled: t.enabled,
      lastError: viewLastError(t.id, t.enabled, m ?? null),
      updatedAt: m?.updatedAt ?? null,
      ...(readiness[i] && desired.state === 'scheduled' ? { readiness: readiness[i] } : {}),
    });
  });
  return { show, mirrors: views };
}

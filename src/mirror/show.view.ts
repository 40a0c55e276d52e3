/** The show status document of README / OpenAPI at /docs: desired show + one entry per mirror. */
import type { DesiredShow } from '../domain/desired-state.js';
import type { MirrorDoc } from '../domain/mirror.js';
import type { TargetRecord } from '../store/partner.repository.js';

export interface MirrorView {
  targetId: string;
  platform: string;
  state: string;
  externalId: string | null;
  url: string | null;
  ingest?: { url: string; streamKey: string };
  pins: { productId: string; state: string; linkUrl: string | null }[];
  lastError: string | null;
  updatedAt: string | null;
}

export function showView(desired: DesiredShow, targets: TargetRecord[], mirrors: (MirrorDoc | null)[]) {
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
  };
  const views: MirrorView[] = [];
  targets.forEach((t, i) => {
    const m = mirrors[i];
    if (!m && !t.enabled) return;
    const pins = new Map<string, MirrorView['pins'][number]>();
    for (const [productId, p] of Object.entries(m?.pins ?? {})) pins.set(productId, { productId, state: p.state, linkUrl: p.linkUrl ?? null });
    const pinsStillWanted = desired.state === 'live' || desired.state === 'scheduled';
    // A link that is shown must work: a pin the mirror has not taken up yet has no link record,
    // so its tracked URL would answer 404 — it is listed without one until the sync creates it.
    for (const productId of pinsStillWanted ? desired.pinned : []) {
      if (!pins.has(productId)) pins.set(productId, { productId, state: 'pending', linkUrl: null });
    }
    const state = m?.state ?? 'pending';
    views.push({
      targetId: t.id,
      platform: t.platform,
      state,
      externalId: m?.remote?.externalId ?? null,
      url: m?.remote?.url ?? null,
      ...(m?.remote?.ingest && (state === 'ready' || state === 'live') ? { ingest: m.remote.ingest } : {}),
      pins: [...pins.values()].sort((a, b) => a.productId.localeCompare(b.productId)),
      lastError: m?.lastError ?? null,
      updatedAt: m?.updatedAt ?? null,
    });
  });
  return { show, mirrors: views };
}

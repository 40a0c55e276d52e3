/** The show status document of CONTRACT §2: desired show + one entry per mirror. */
import type { DesiredShow } from '../domain/desired-state.js';
import type { MirrorDoc } from '../domain/mirror.js';
import type { TargetRecord } from '../store/partner.repository.js';
import type { LinkService } from '../links/link.service.js';

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

export function showView(partnerId: string, desired: DesiredShow, targets: TargetRecord[], mirrors: (MirrorDoc | null)[], links: LinkService) {
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
    for (const productId of pinsStillWanted ? desired.pinned : []) {
      if (!pins.has(productId)) pins.set(productId, { productId, state: 'pending', linkUrl: links.urlFor(links.code(partnerId, desired.showId, t.id, productId)) });
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

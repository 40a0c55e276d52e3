/** Show status, listing and the operator actions on mirrors (link, resync, retry). */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { IdSchema, SHOW_STATES } from '../../domain/events.js';
import { newMirror } from '../../domain/mirror.js';
import { notFound } from '../../lib/errors.js';
import { idRecord } from '../../lib/id-record.js';
import { showView } from '../../mirror/show.view.js';
import type { SyncProducer } from '../../queues/queues.js';
import type { PartnerRepository } from '../../store/partner.repository.js';
import type { ShowRepository } from '../../store/show.repository.js';
import { assertPartnerAccess } from '../plugins/auth.plugin.js';

export interface ShowRoutesOptions {
  partners: PartnerRepository;
  shows: ShowRepository;
  sync: SyncProducer;
}

const Params = z.object({ partnerId: IdSchema });
const ShowParams = z.object({ partnerId: IdSchema, showId: IdSchema });
const MirrorParams = z.object({ partnerId: IdSchema, showId: IdSchema, targetId: IdSchema });
const ListQuery = z.object({ state: z.enum(SHOW_STATES).optional(), limit: z.coerce.number().int().min(1).max(200).default(50), cursor: z.coerce.number().int().min(0).default(0) });

export const showRoutes: FastifyPluginAsyncZod<ShowRoutesOptions> = async (app, opts) => {
  const { partners, shows, sync } = opts;

  const load = async (partnerId: string, showId: string) => {
    const bundle = await partners.bundle(partnerId);
    if (!bundle) throw notFound(`partner ${partnerId}`);
    const desired = await shows.desired(partnerId, showId);
    if (!desired) throw notFound(`show ${showId}`);
    return { bundle, desired };
  };

  app.get('/v1/partners/:partnerId/shows', { preHandler: app.requireRole('operator', 'viewer', 'partner'), schema: { tags: ['shows'], summary: 'List shows (newest scheduled first)', params: Params, querystring: ListQuery } }, async (req) => {
    const { partnerId } = req.params;
    assertPartnerAccess(req, partnerId);
    if (!(await partners.get(partnerId))) throw notFound(`partner ${partnerId}`);
    const { state, limit } = req.query;
    const items: unknown[] = [];
    let cursor = req.query.cursor;
    let total = 0;
    // Filtering by state reads each show; scan at most 10 pages per request and hand back a cursor.
    for (let scanned = 0; items.length < limit && scanned < limit * 10; ) {
      const page = await shows.listShowIds(partnerId, cursor, limit);
      total = page.total;
      if (page.ids.length === 0) break;
      const desired = await Promise.all(page.ids.map((id) => shows.desired(partnerId, id)));
      for (const d of desired) {
        cursor += 1;
        scanned += 1;
        if (d && (!state || d.state === state) && items.length < limit) items.push({ id: d.showId, title: d.title, state: d.state, scheduledAt: d.scheduledAt, version: d.version });
        if (items.length >= limit) break;
      }
    }
    return { shows: items, nextCursor: cursor < total ? cursor : null, total };
  });

  app.get('/v1/partners/:partnerId/shows/:showId', { preHandler: app.requireRole('operator', 'viewer', 'partner'), schema: { tags: ['shows'], summary: 'Show status with one entry per mirror', params: ShowParams } }, async (req) => {
    const { partnerId, showId } = req.params;
    assertPartnerAccess(req, partnerId);
    const { bundle, desired } = await load(partnerId, showId);
    const mirrors = await shows.getMirrors(partnerId, showId, bundle.targets.map((t) => t.id));
    return showView(desired, bundle.targets, mirrors);
  });

  app.put(
    '/v1/partners/:partnerId/shows/:showId/mirrors/:targetId',
    { preHandler: app.requireRole('operator'), schema: { tags: ['shows'], summary: 'Link a show created by hand on the platform', params: MirrorParams, body: z.object({ externalId: z.string().min(1).max(256) }) } },
    async (req) => {
      const { partnerId, showId, targetId } = req.params;
      const { bundle } = await load(partnerId, showId);
      const target = bundle.targets.find((t) => t.id === targetId);
      if (!target) throw notFound(`target ${targetId}`);
      const mirror = (await shows.updateMirror(partnerId, showId, targetId, () => newMirror(targetId, target.platform), (m) => {
        m.generation += 1; // intents of the previous remote show no longer apply
        m.remote = { externalId: req.body.externalId, url: undefined, ingest: undefined, data: { attach: '1' } };
        m.applied = undefined;
        m.state = 'ready';
        m.wentLive = false;
        m.pins = idRecord();
        m.lastError = null;
        m.retries = 0;
        return true;
      }))!;
      await partners.audit(partnerId, { who: req.principal?.id, action: 'mirror.linked', showId, targetId, externalId: req.body.externalId });
      await sync.enqueue(target.platform, { partnerId, showId, targetId });
      return { targetId, state: mirror.state, externalId: req.body.externalId };
    },
  );

  app.post(
    '/v1/partners/:partnerId/shows/:showId/mirrors/:targetId/resync',
    { preHandler: app.requireRole('operator'), schema: { tags: ['shows'], summary: 'Force a sync now; a failed mirror is retried', params: MirrorParams } },
    async (req, reply) => {
      const { partnerId, showId, targetId } = req.params;
      const { bundle } = await load(partnerId, showId);
      const target = bundle.targets.find((t) => t.id === targetId);
      if (!target) throw notFound(`target ${targetId}`);
      if (await shows.getMirror(partnerId, showId, targetId)) {
        await shows.updateMirror(partnerId, showId, targetId, () => newMirror(targetId, target.platform), (m) => {
          if (m.state !== 'failed' && m.retries === 0) return false;
          // Retry: same intents (a half-done create is found again, not repeated), fresh retry budget.
          m.state = m.remote ? (m.wentLive ? 'live' : 'ready') : 'pending';
          m.retries = 0;
          m.lastError = null;
          return true;
        });
      }
      await partners.audit(partnerId, { who: req.principal?.id, action: 'mirror.resync', showId, targetId });
      const job = { partnerId, showId, targetId };
      if (!(await sync.promote(target.platform, job))) await sync.enqueue(target.platform, job);
      return reply.status(202).send({ targetId, queued: true });
    },
  );
};

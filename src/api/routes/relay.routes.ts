/**
 * This deployment's video relay (admin): whether it has one and whether a relay process runs now
 * (README "Video relay"). Mirrors with an ingest wait for relayed video while the relay is part of the
 * deployment, also while none of its processes runs; DELETE takes it out for good (once every relay
 * process is stopped), after which they go live without waiting for video, as a deployment that
 * never ran a relay does.
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { conflict } from '../../lib/errors.js';
import { actorOf, type AuditRepository } from '../../store/audit.repository.js';
import type { RelayRepository } from '../../store/relay.repository.js';
import { FORBIDDEN_ROLE, ok } from '../openapi.js';

const Presence = z.object({
  deployed: z.boolean().describe('the relay is part of this deployment: YouTube and Facebook mirrors go live only once it sends to them'),
  since: z.string().nullable().describe('when a relay process first ran here (ISO)'),
  running: z.boolean().describe('a relay process reported within the last few seconds'),
});

export const relayRoutes: FastifyPluginAsyncZod<{ relay: RelayRepository; audit: AuditRepository }> = async (app, opts) => {
  app.get('/v1/relay', { preHandler: app.requireRole(), schema: { tags: ['relay'], summary: "This deployment's video relay: part of it, and running now", docResponses: { 200: ok('the relay', Presence), 403: FORBIDDEN_ROLE } } }, async () => opts.relay.presence());

  app.delete(
    '/v1/relay',
    { preHandler: app.requireRole(), schema: { tags: ['relay'], summary: 'Take the video relay out of this deployment (its processes stopped for good): mirrors stop waiting for relayed video', docResponses: { 200: ok('removed (again: unchanged)', Presence), 403: FORBIDDEN_ROLE, 409: 'a relay process is running: stop every relay process first (its next pass would add the relay again)' } } },
    async (req) => {
      // One relay.removed entry per removal: DELETEs at once (or after it is gone) read the relay
      // deployed before any of them removed it, and each wrote an entry. The removal is recorded with
      // the marker's removal (one script) as not yet audited, and every call writes the entries still
      // missing, each once: a call whose audit write failed (5xx) left the removal unaudited, and its
      // retry, answered "absent", never wrote it.
      const undeployed = await opts.relay.undeploy({ actor: actorOf(req.principal), requestId: req.id });
      for (const r of undeployed.unaudited) {
        await opts.audit.recordOnce(`relay-removed:${r.id}`, r.actor, { action: 'relay.removed', requestId: r.requestId, detail: { since: r.since } });
        await opts.relay.audited(r.id);
      }
      if (undeployed.outcome === 'running') throw conflict('a relay process is running: stop every relay process first (each pass marks the relay as part of this deployment)');
      return opts.relay.presence();
    },
  );
};

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
import type { RelayRepository } from '../../store/relay.repository.js';
import { FORBIDDEN_ROLE, ok } from '../openapi.js';

const Presence = z.object({
  deployed: z.boolean().describe('the relay is part of this deployment: YouTube and Facebook mirrors go live only once it sends to them'),
  since: z.string().nullable().describe('when a relay process first ran here (ISO)'),
  running: z.boolean().describe('a relay process reported within the last few seconds'),
});

export const relayRoutes: FastifyPluginAsyncZod<{ relay: RelayRepository }> = async (app, opts) => {
  app.get('/v1/relay', { preHandler: app.requireRole(), schema: { tags: ['relay'], summary: "This deployment's video relay: part of it, and running now", docResponses: { 200: ok('the relay', Presence), 403: FORBIDDEN_ROLE } } }, async () => opts.relay.presence());

  app.delete(
    '/v1/relay',
    { preHandler: app.requireRole(), schema: { tags: ['relay'], summary: 'Take the video relay out of this deployment (its processes stopped for good): mirrors stop waiting for relayed video', docResponses: { 200: ok('removed (again: unchanged)', Presence), 403: FORBIDDEN_ROLE, 409: 'a relay process is running: stop every relay process first (its next pass would add the relay again)' } } },
    async (req) => {
      // Audited by the one call that took the marker away: DELETEs at once (or after it is gone) read
      // the relay deployed before any of them removed it, and each wrote a relay.removed entry.
      const undeployed = await opts.relay.undeploy();
      if (undeployed.outcome === 'running') throw conflict('a relay process is running: stop every relay process first (each pass marks the relay as part of this deployment)');
      if (undeployed.outcome === 'removed') await app.audit(req, { action: 'relay.removed', detail: { since: undeployed.since } });
      return opts.relay.presence();
    },
  );
};

/**
 * The external ingest edge's callbacks (docker-compose's nginx + libnginx-mod-rtmp, config/nginx-rtmp.conf):
 * nginx-rtmp asks `on_publish` before it accepts a publish (2xx: accept, anything else: refuse) and
 * reports `on_publish_done`. Both are form-encoded (`app`, `name` = the stream key, `clientid`, …) and
 * carry no API key: the stream key itself is the credential, checked exactly as the embedded edge does
 * (the show's current key; the show neither ended nor cancelled). On accept the show's source becomes
 * RELAY_EDGE_INTERNAL_URL, where the relay processes read it.
 */
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { AppError, notFound } from '../../lib/errors.js';
import type { RelayRepository } from '../../store/relay.repository.js';
import type { ShowRepository } from '../../store/show.repository.js';
import { ok } from '../openapi.js';

export interface RelayEdgeRoutesOptions {
  relay: RelayRepository;
  shows: ShowRepository;
  /** RELAY_EDGE_INTERNAL_URL when RELAY_EDGE=none: where relay processes read what the external edge receives; unset: no external edge. */
  edgeUrl: string | undefined;
  /** RELAY_EDGE: with `none` and no edgeUrl the 404 names RELAY_EDGE_INTERNAL_URL, not RELAY_EDGE. */
  relayEdge: 'embedded' | 'none';
}

const Callback = z.object({ name: z.string().min(1).max(512), clientid: z.string().max(64).default(''), app: z.string().max(64).optional() });

export const relayEdgeRoutes: FastifyPluginAsync<RelayEdgeRoutesOptions> = async (app, opts) => {
  // nginx-rtmp appends the publisher's own query string (`rtmp://…/live/<name>?<args>`) raw after the
  // fields it writes (ngx_rtmp_notify_publish_create: `…&name=<name>&type=live&<args>`): an encoder that
  // publishes `anything?name=<a show's key>` repeats `name`. Read last-wins, the key checked was the
  // injected one and nginx accepted a publish of `anything`. A repeated field is kept as all its values
  // (an array): not a string, the callback is refused (403).
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    const fields: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>;
    for (const [k, v] of new URLSearchParams(String(body))) {
      const had = fields[k];
      // Pushed, not copied: a body of 1 MiB repeating one field was quadratic.
      if (Array.isArray(had)) had.push(v);
      else fields[k] = had === undefined ? v : [had, v];
    }
    done(null, fields);
  });
  const refuse = (detail: string): AppError => new AppError(403, 'Forbidden', detail);

  const check = async (body: unknown) => {
    if (!opts.edgeUrl) throw notFound(opts.relayEdge === 'none' ? 'external ingest edge (RELAY_EDGE_INTERNAL_URL is not set: where relay processes read what it receives)' : 'external ingest edge (RELAY_EDGE is not none: the relay runs its own)');
    const parsed = Callback.safeParse(body);
    if (!parsed.success) throw refuse('not an nginx-rtmp callback');
    const show = await opts.relay.showOfKey(parsed.data.name);
    if (!show) throw refuse('unknown stream key');
    return { show, key: parsed.data.name, session: `nginx:${parsed.data.clientid}`, edgeUrl: opts.edgeUrl };
  };

  app.post('/v1/relay/edge/on-publish', { schema: { tags: ['relay'], summary: 'nginx-rtmp on_publish: accept (204) or refuse (403) a publish by its stream key',
      docResponses: { 204: ok("accepted: the show's source is now the external edge"), 415: 'a body that is not form-encoded, JSON or text', 403: 'refused: not an nginx-rtmp callback (a form field repeated: a query string of the publisher, appended by nginx), unknown stream key, or the show ended or was cancelled', 404: 'no external edge is configured (RELAY_EDGE is not none, or RELAY_EDGE_INTERNAL_URL is not set)' },
    } }, async (req, reply) => {
    const { show, key, session, edgeUrl } = await check(req.body);
    const desired = await opts.shows.desired(show.partnerId, show.showId);
    if (!desired || desired.state === 'ended' || desired.state === 'cancelled') throw refuse(`the show is ${desired?.state ?? 'unknown'}`);
    // Written only if the key is still current: a rotation since the check refuses the publish (its
    // on_publish_done would name a key that is no show's, and could not clear the source).
    if (!(await opts.relay.setSource(show.partnerId, show.showId, key, { edgeUrl, session, since: new Date().toISOString() }))) throw refuse('unknown stream key');
    return reply.status(204).send();
  });

  app.post('/v1/relay/edge/on-publish-done', { schema: { tags: ['relay'], summary: 'nginx-rtmp on_publish_done: the publish ended',
      docResponses: { 204: ok('noted'), 415: 'a body that is not form-encoded, JSON or text', 403: 'not an nginx-rtmp callback, or unknown stream key', 404: 'no external edge is configured (RELAY_EDGE is not none, or RELAY_EDGE_INTERNAL_URL is not set)' },
    } }, async (req, reply) => {
    const { show, session } = await check(req.body);
    await opts.relay.clearSource(show.partnerId, show.showId, session);
    return reply.status(204).send();
  });
};

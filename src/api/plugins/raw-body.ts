/**
 * The raw-body routes (signed partner events, platform webhooks) read every body as bytes: the
 * signature covers them, and the JSON is parsed after it is verified. Their Content-Type decides
 * nothing, yet Fastify answers 415 itself, before any parser or route runs, when the header does not
 * parse as `type/subtype` ("invalid", ";", "undefined"): a partner or platform whose sender writes
 * such a header had every event refused (a 4xx is not retried). This hook, on those routes only, hands
 * such a header to the catch-all parser as application/octet-stream.
 */
import type { FastifyInstance } from 'fastify';

/** What Fastify's ContentType accepts (lib/content-type.js): `type/subtype` of token characters, then nothing or `;` parameters. */
const MEDIA_TYPE = /^\s*[\w!#$%&'*+.^`|~-]+\/[\w!#$%&'*+.^`|~-]+\s*(?:;|$)/;

export function acceptAnyContentType(app: FastifyInstance): void {
  app.addHook('onRequest', (req, _reply, done) => {
    const ct = req.headers['content-type'];
    if (ct !== undefined && (ct === 'undefined' || !MEDIA_TYPE.test(ct))) req.headers['content-type'] = 'application/octet-stream';
    done();
  });
}

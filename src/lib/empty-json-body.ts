/**
 * An empty body labelled `application/json` is no body: many API helpers label every request JSON,
 * also a POST or DELETE that carries nothing, and Fastify's own parser answered those 400 "Body cannot
 * be empty when content-type is set to 'application/json'". A route that needs a body still refuses a
 * missing one with its own field errors. Anything else goes to Fastify's JSON parser (prototype
 * poisoning refused as before). Used by the API (src/api/app.ts) and the simulators' server.
 */
import type { FastifyInstance } from 'fastify';

export function acceptEmptyJsonBody(app: FastifyInstance): void {
  const defaultJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    if (body === '') return done(null, undefined);
    return defaultJson(req, body as string, done);
  });
}

/** OpenAPI 3.1 generated from the route schemas (@fastify/swagger) and served at /docs (swagger-ui). */
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { jsonSchemaTransform } from 'fastify-type-provider-zod';

/** Routes without an API key: health, signed partner events, tracked links, platform webhooks. */
const PUBLIC = [/^\/health\//, /^\/v1\/partners\/:partnerId\/events$/, /^\/l\//, /^\/v1\/platform-webhooks\//];

/** `post /v1/partners/:partnerId/targets` → `postPartnersTargets`-style ids, unique per method and path. */
export function operationId(method: string, url: string): string {
  const words = url
    .replace(/^\/v1\//, '/')
    .split('/')
    .filter(Boolean)
    .map((seg) => (seg.startsWith(':') ? `By${seg.slice(1, 2).toUpperCase()}${seg.slice(2)}` : seg.replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ? c.toUpperCase() : ''))))
    .map((w) => w.slice(0, 1).toUpperCase() + w.slice(1));
  return method + words.join('');
}

async function docsPlugin(app: FastifyInstance, opts: { publicBaseUrl: string }): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Syndicast', version: '0.1.0', description: 'Live-shopping syndication: partner events in, mirrored shows out, attribution back. Guide: the repository README.md and docs/ (architecture, attribution, operations, platforms).' },
      servers: [{ url: opts.publicBaseUrl }],
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    // Every operation gets an operationId (method + path) and public routes `security: []`.
    transform: (args) => {
      const out = jsonSchemaTransform(args);
      const schema = out.schema as Record<string, unknown>;
      // A GET+HEAD route (tracked links) is one handler: its id is the GET's (the HEAD operation repeats it).
      const method = String(Array.isArray(args.route.method) ? args.route.method[0] : args.route.method).toLowerCase();
      schema['operationId'] ??= operationId(method, args.url);
      if (PUBLIC.some((re) => re.test(args.url))) schema['security'] = [];
      return out;
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
}

export default fp(docsPlugin, { name: 'docs' });

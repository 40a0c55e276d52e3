/** OpenAPI 3.1 generated from the route schemas (@fastify/swagger) and served at /docs (swagger-ui). */
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { jsonSchemaTransform } from 'fastify-type-provider-zod';

async function docsPlugin(app: FastifyInstance, opts: { publicBaseUrl: string }): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Syndicast', version: '0.1.0', description: 'Live-shopping syndication: partner events in, mirrored shows out, attribution back. Guide: the repository README.md and docs/ (architecture, attribution, operations, platforms).' },
      servers: [{ url: opts.publicBaseUrl }],
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
}

export default fp(docsPlugin, { name: 'docs' });

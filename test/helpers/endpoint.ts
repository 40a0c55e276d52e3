/**
 * A partner's webhook endpoint for the e2e tests: a local HTTP server registered for `events`
 * (POST /v1/partners/{p}/endpoints, 201 expected). Every delivery is verified with the endpoint's
 * signing secret (Standard Webhooks: a bad signature throws) and handed to `onMessage` with its
 * headers; each gets 200.
 */
import { createServer } from 'node:http';
import { Webhook } from 'standardwebhooks';
import type { TestService } from './service.js';

export interface TestEndpoint {
  /** The endpoint's signing secret. */
  secret: string;
  close(): void;
}

export async function startEndpoint(
  svc: TestService,
  partner: string,
  events: string[],
  onMessage: (payload: unknown, headers: Record<string, string>) => void,
): Promise<TestEndpoint> {
  let secret = '';
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v;
      onMessage(new Webhook(secret).verify(Buffer.concat(chunks).toString('utf8'), headers), headers);
      res.writeHead(200).end();
    });
  });
  const close = (): void => {
    server.closeAllConnections();
    server.close();
  };
  try {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const ep = await svc.api(`/v1/partners/${partner}/endpoints`, { json: { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/h`, events } });
    expect(ep.status).toBe(201);
    secret = ((await ep.json()) as { secret: string }).secret;
  } catch (err) {
    close();
    throw err;
  }
  return { secret, close };
}

/**
 * The OpenAPI document (/docs/json) tells the truth (issue 11 item 7): it passes `@redocly/cli lint`
 * (built-in `recommended` rules, no errors), every route fastify serves is in it with a summary, an
 * operationId and a 2xx/3xx answer, and what the service really answers — status, media type and
 * body — is what the document says. Real redis-server, real HTTP; redocly runs offline (local
 * config, telemetry and update check off).
 */
import { execFile } from 'node:child_process';
import { connect } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { z } from 'zod';
import { HOUR_MS, isoFromNow } from '../helpers/clock.js';
import { signatureHeader } from '../../src/sources/signature.js';
import { ADMIN_KEY, createPartner, sampleShow, sendEvent, showEvent, startService, waitFor, type TestService } from '../helpers/service.js';

type Json = Record<string, unknown>;
interface Operation {
  operationId?: string;
  summary?: string;
  security?: unknown[];
  responses: Record<string, { content?: Record<string, { schema?: Json }> }>;
}
interface Doc {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Json> };
  servers: { url: string }[];
}

const REQUEST_TIMEOUT_MS = 2000;
let svc: TestService;
let doc: Doc;
let dir: string;

beforeAll(async () => {
  // A short HTTP_REQUEST_TIMEOUT_MS (30 s by default) so that the 408 can be provoked below.
  svc = await startService({ env: { HTTP_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS) } });
  const r = await fetch(`${svc.url}/docs/json`);
  expect(r.status).toBe(200);
  doc = (await r.json()) as Doc;
  dir = mkdtempSync(join(tmpdir(), 'syndicast-openapi-'));
});
afterAll(async () => {
  await svc.close();
  rmSync(dir, { recursive: true, force: true });
});

test('@redocly/cli lint (recommended rules) finds no error in the document', async () => {
  const file = join(dir, 'openapi.json');
  const config = join(dir, 'redocly.yaml');
  writeFileSync(file, JSON.stringify(doc));
  // Built-in ruleset only: nothing is fetched. `info-license`: the project is private (no licence to name).
  writeFileSync(config, 'extends:\n  - recommended\nrules:\n  info-license: off\n');
  // Where the recommended rules do not fit what the route really does: a tracked link answers 302 (never
  // a 2xx). (Health, metrics and the console page had no 4xx to list until 408/417/431 were listed on
  // every operation.)
  const ignore: Record<string, string[]> = {
    'operation-2xx-response': ['#/paths/~1l~1{code}/get/responses', '#/paths/~1l~1{code}/head/responses'],
  };
  writeFileSync(join(dir, '.redocly.lint-ignore.yaml'), `openapi.json:\n${Object.entries(ignore).map(([rule, at]) => `  ${rule}:\n${at.map((p) => `    - '${p}'\n`).join('')}`).join('')}`);
  const cli = join(process.cwd(), 'node_modules/@redocly/cli/bin/cli.js');
  const env = { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', NO_COLOR: '1' };
  const run = await promisify(execFile)(process.execPath, [cli, 'lint', '--config', config, '--format', 'json', file], { env, cwd: dir, maxBuffer: 16 * 1024 * 1024 }).catch((err: { stdout?: string; stderr?: string; code?: number }) => ({
    stdout: err.stdout ?? '',
    stderr: err.stderr ?? '',
    code: err.code,
  }));
  const report = JSON.parse(run.stdout) as { totals: { errors: number; warnings: number }; problems: { ruleId: string; severity: string; message: string; location: { pointer: string }[] }[] };
  const errors = report.problems.filter((p) => p.severity === 'error').map((p) => `${p.ruleId} ${p.location[0]?.pointer}: ${p.message}`);
  expect(errors).toEqual([]);
  expect(report.totals.errors).toBe(0);
  // Warnings are allowed but listed: none today.
  expect(report.problems.map((p) => `${p.ruleId} ${p.location[0]?.pointer}`)).toEqual([]);
});

test('the server URL is relative (this service), security schemes exist, every operation has real answers', () => {
  expect(doc.servers).toEqual([{ url: '/', description: 'this service' }]);
  expect(JSON.stringify(doc)).not.toContain('CONTRACT');
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const where = `${method} ${path}`;
      const statuses = Object.keys(op.responses);
      expect([where, statuses.some((s) => /^[23]\d\d$/.test(s))]).toEqual([where, true]);
      expect([where, statuses.filter((s) => !/^[1-5]\d\d$/.test(s))]).toEqual([where, []]);
      for (const s of statuses.filter((x) => Number(x) >= 400)) {
        expect([where, s, Object.keys(op.responses[s]!.content ?? {})]).toEqual([where, s, ['application/problem+json']]);
      }
      // A 401 where an API key is needed, and where a route checks its own credential (a signature, the sign-in's key).
      const isPublic = Array.isArray(op.security) && op.security.length === 0;
      const ownCredential = ['post /v1/partners/{partnerId}/events', 'post /v1/platform-webhooks/{targetId}', 'post /v1/ops/session'].includes(where);
      expect([where, statuses.includes('401')]).toEqual([where, !isPublic || ownCredential]);
    }
  }
});

/** `/l/:code` → `/l/{code}`. */
const toDocPath = (url: string): string => url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
/** Served but not API operations: swagger-ui and its document, the bull-board dashboard (its own page and XHR API), `/ops/` (a redirect to the console page). */
// Pages and their aliases, not operations: /docs, the dashboard, /ops/ and / (both redirect to /ops).
const UNDOCUMENTED = [/^\/docs(\/|$)/, /^\/admin\/queues(\/|$)/, /^\/ops\/$/, /^\/$/];

test('every route fastify serves is documented with a summary and an operationId (a new route without them fails)', () => {
  // printRoutes is the router itself: each line `├── /path (GET, HEAD)`, nested lines continue their parent's path.
  const served: string[] = [];
  const stack: { depth: number; path: string }[] = [];
  for (const line of svc.app.printRoutes({ commonPrefix: false }).split('\n')) {
    const m = /^([│ ]*)[├└]── (.+?)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (!m) continue;
    const depth = m[1]!.length;
    while (stack.length && stack[stack.length - 1]!.depth >= depth) stack.pop();
    const path = (stack[stack.length - 1]?.path ?? '') + m[2]!;
    stack.push({ depth, path });
    for (const method of (m[3] ?? '').split(', ').filter(Boolean)) served.push(`${method.toLowerCase()} ${path.replace(/\/\//g, '/')}`);
  }
  expect(served.length).toBeGreaterThan(40);
  const missing: string[] = [];
  for (const route of served) {
    const [method, url] = route.split(' ') as [string, string];
    if (UNDOCUMENTED.some((re) => re.test(url))) continue;
    const op = doc.paths[toDocPath(url)]?.[method];
    // fastify answers HEAD for every GET; only an explicit HEAD (tracked links) is an operation of its own.
    if (!op && method === 'head' && doc.paths[toDocPath(url)]?.['get']) continue;
    if (!op?.summary || !op.operationId) missing.push(route);
  }
  expect(missing).toEqual([]);
  // Every operation with a path parameter can answer the router's 414 (src/api/app.ts overlongParam).
  // Every operation can answer what any request can get before a route runs: 408 and 431 (the HTTP
  // parser) and 417 (an Expect other than 100-continue). They were in no operation of the document.
  const withoutShared = Object.entries(doc.paths).flatMap(([path, ops]) => Object.entries(ops).flatMap(([m, op]) => ['408', '417', '431'].filter((s) => !op.responses[s]).map((s) => `${m} ${path} ${s}`)));
  expect(withoutShared).toEqual([]);
  const without414 = Object.entries(doc.paths).flatMap(([path, ops]) => (path.includes('{') ? Object.entries(ops).filter(([, op]) => !op.responses['414']).map(([m]) => `${m} ${path}`) : []));
  expect(without414).toEqual([]);
  const ids = Object.values(doc.paths).flatMap((ops) => Object.values(ops).map((op) => op.operationId));
  expect(ids.filter((id, i) => ids.indexOf(id) !== i)).toEqual([]);
});

test('the actions that take no body (the rotations, a resync) do not say one is required; a route that needs its body does', () => {
  // @fastify/swagger marked `requestBody.required: true` on every route with a body schema, NoBody's too.
  const required = (method: string, path: string): unknown => (doc.paths[path]?.[method] as { requestBody?: { required?: boolean } } | undefined)?.requestBody?.required;
  expect({
    partnerSecret: required('post', '/v1/partners/{partnerId}/webhook-secret/rotate'),
    endpointSecret: required('post', '/v1/partners/{partnerId}/endpoints/{endpointId}/rotate-secret'),
    ingestKey: required('post', '/v1/partners/{partnerId}/shows/{showId}/ingest/rotate'),
    resync: required('post', '/v1/partners/{partnerId}/shows/{showId}/mirrors/{targetId}/resync'),
    createTarget: required('post', '/v1/partners/{partnerId}/targets'),
  }).toEqual({ partnerSecret: false, endpointSecret: false, ingestKey: false, resync: false, createTarget: true });
  // The marker that carries it to the document's last step is gone.
  expect(JSON.stringify(doc)).not.toContain('x-syndicast-optional-body');
});

/** The JSON Schema an operation documents for `status`'s JSON body (or its request body), $refs inlined. */
function schemaOf(method: string, path: string, status: number | 'body'): Json {
  const op = doc.paths[path]?.[method] as (Operation & { requestBody?: { content?: Record<string, { schema?: Json }> } }) | undefined;
  if (!op) throw new Error(`${method} ${path}: not in the document`);
  const media = status === 'body' ? op.requestBody?.content?.['application/json'] : op.responses[String(status)]?.content?.['application/json'];
  if (!media?.schema) throw new Error(`${method} ${path} ${status}: no JSON schema documented`);
  return JSON.parse(JSON.stringify(media.schema), (_k, v: unknown) => {
    const ref = (v as { $ref?: string } | null)?.$ref;
    return typeof ref === 'string' ? doc.components.schemas[ref.replace('#/components/schemas/', '')] : v;
  }) as Json;
}

/** The object variant of a schema (a nullable object is `anyOf: [object, null]`); `at` walks properties, `[]` an array's items. */
function objectAt(schema: Json, at: string[] = []): { properties: Record<string, Json>; required: string[] } {
  let cur = schema;
  const unwrap = (s: Json): Json => {
    const variants = (s['anyOf'] ?? s['oneOf']) as Json[] | undefined;
    return variants ? (variants.find((v) => v['type'] !== 'null') ?? s) : s;
  };
  for (const step of at) {
    cur = unwrap(cur);
    cur = step === '[]' ? (cur['items'] as Json) : ((cur['properties'] as Record<string, Json> | undefined)?.[step] ?? {});
  }
  cur = unwrap(cur);
  return { properties: (cur['properties'] as Record<string, Json> | undefined) ?? {}, required: (cur['required'] as string[] | undefined) ?? [] };
}

/** A property's enum values, sorted (a nullable enum: its non-null variant's). */
function enumOf(schema: Json, at: string[]): string[] {
  const parent = objectAt(schema, at.slice(0, -1));
  const prop = parent.properties[at.at(-1)!] ?? {};
  const variants = (prop['anyOf'] ?? prop['oneOf']) as Json[] | undefined;
  const values = (prop['enum'] ?? variants?.find((v) => Array.isArray(v['enum']))?.['enum'] ?? []) as string[];
  return [...values].sort();
}

/**
 * The external contract's response shapes and enums (its §2, §3, §10), written out here: the document
 * must name every field and every enum value the contract gives. A field or a value dropped from a
 * route schema fails this test (the real-answer test below only proves that what is sent fits).
 */
test("the document names every field and enum value the contract gives for shows, mirrors, reconciliations and the other answers", () => {
  const sorted = (xs: readonly string[]): string[] => [...xs].sort();
  const fields = (schema: Json, at: string[] = []): string[] => Object.keys(objectAt(schema, at).properties);
  const view = schemaOf('get', '/v1/partners/{partnerId}/shows/{showId}', 200);
  expect(fields(view)).toEqual(expect.arrayContaining(['show', 'mirrors']));
  expect(fields(view, ['show'])).toEqual(expect.arrayContaining(['id', 'state', 'ingest']));
  expect(enumOf(view, ['show', 'state'])).toEqual(sorted(['scheduled', 'live', 'ended', 'cancelled']));
  expect(fields(view, ['show', 'ingest'])).toEqual(expect.arrayContaining(['url', 'streamKey']));
  const mirror = ['mirrors', '[]'];
  const always = ['targetId', 'platform', 'state', 'externalId', 'url', 'pins', 'lastError', 'updatedAt', 'relay'];
  expect(fields(view, mirror)).toEqual(expect.arrayContaining([...always, 'ingest']));
  expect(objectAt(view, mirror).required).toEqual(expect.arrayContaining(always));
  expect(enumOf(view, [...mirror, 'state'])).toEqual(sorted(['pending', 'provisioning', 'ready', 'live', 'ended', 'cancelled', 'failed', 'action_required']));
  expect(enumOf(view, [...mirror, 'platform'])).toEqual(sorted(['youtube', 'tiktok', 'whatnot', 'bambuser', 'facebook']));
  expect(fields(view, [...mirror, 'pins', '[]'])).toEqual(expect.arrayContaining(['productId', 'state', 'linkUrl']));
  expect(fields(view, [...mirror, 'ingest'])).toEqual(expect.arrayContaining(['url', 'streamKey']));
  expect(fields(view, [...mirror, 'relay'])).toEqual(expect.arrayContaining(['state', 'bitrateKbps', 'bytesSent', 'since', 'restarts', 'lastError']));
  expect(enumOf(view, [...mirror, 'relay', 'state'])).toEqual(sorted(['idle', 'connecting', 'sending', 'retrying', 'failed', 'stopped']));
  // Linking a show made by hand answers the mirror's state: the same enum.
  expect(enumOf(schemaOf('put', '/v1/partners/{partnerId}/shows/{showId}/mirrors/{targetId}', 200), ['state'])).toEqual(enumOf(view, [...mirror, 'state']));

  const rec = schemaOf('get', '/v1/reconciliations/{id}', 200);
  const recFields = ['id', 'status', 'from', 'to', 'summary', 'discrepancies'];
  expect(fields(rec)).toEqual(expect.arrayContaining(recFields));
  expect(objectAt(rec).required).toEqual(expect.arrayContaining(recFields.filter((f) => f !== 'summary')));
  expect(enumOf(rec, ['status'])).toEqual(sorted(['queued', 'running', 'completed', 'failed']));
  const discrepancy = ['discrepancies', '[]'];
  expect(fields(rec, discrepancy)).toEqual(expect.arrayContaining(['kind', 'targetId', 'orderId', 'detail']));
  expect(objectAt(rec, discrepancy).required).toEqual(expect.arrayContaining(['kind', 'targetId', 'orderId', 'detail']));
  expect(enumOf(rec, [...discrepancy, 'kind'])).toEqual(sorted(['missing_in_ledger', 'missing_in_platform', 'amount_mismatch', 'status_mismatch']));
  const listed = schemaOf('get', '/v1/partners/{partnerId}/reconciliations', 200);
  expect(enumOf(listed, ['reconciliations', '[]', 'status'])).toEqual(enumOf(rec, ['status']));
  expect(fields(schemaOf('post', '/v1/partners/{partnerId}/reconciliations', 202))).toEqual(['id']);

  const report = schemaOf('get', '/v1/partners/{partnerId}/attribution', 200);
  expect(fields(report, ['totals', '[]'])).toEqual(expect.arrayContaining(['showId', 'targetId', 'currency', 'orders', 'grossAmount', 'refundedAmount', 'commission']));
  expect(fields(report, ['unattributed', '[]'])).toEqual(expect.arrayContaining(['currency', 'orders', 'grossAmount']));
  expect(enumOf(schemaOf('post', '/v1/partners/{partnerId}/targets', 'body'), ['platform'])).toEqual(sorted(['youtube', 'tiktok', 'whatnot', 'bambuser', 'facebook']));
  expect(enumOf(schemaOf('get', '/v1/partners/{partnerId}/targets', 200), ['targets', '[]', 'platform'])).toEqual(sorted(['youtube', 'tiktok', 'whatnot', 'bambuser', 'facebook']));
  expect(fields(schemaOf('post', '/v1/partners', 201))).toEqual(expect.arrayContaining(['id', 'name', 'webhookSecret']));
  expect(fields(schemaOf('post', '/v1/api-keys', 201))).toEqual(expect.arrayContaining(['id', 'key']));
  expect(fields(schemaOf('post', '/v1/partners/{partnerId}/endpoints', 201))).toEqual(expect.arrayContaining(['id', 'secret']));
  expect(fields(schemaOf('post', '/v1/partners/{partnerId}/events', 202))).toEqual(expect.arrayContaining(['eventId', 'duplicate']));
});

test("the partner event body says which optional fields may be null (read as absent) and which fields may not", () => {
  const body = schemaOf('post', '/v1/partners/{partnerId}/events', 'body');
  const variants = (body['oneOf'] ?? body['anyOf']) as Json[];
  const variant = (type: string): Json => variants.find((v) => (objectAt(v).properties['type']?.['const'] ?? (objectAt(v).properties['type']?.['enum'] as string[] | undefined)?.[0]) === type)!;
  const nullable = (schema: Json, at: string[]): boolean => {
    const prop = objectAt(schema, at.slice(0, -1)).properties[at.at(-1)!] ?? {};
    return ((prop['anyOf'] ?? prop['oneOf'] ?? []) as Json[]).some((v) => v['type'] === 'null') || (Array.isArray(prop['type']) && prop['type'].includes('null'));
  };
  const order = variant('order.created');
  const show = variant('show.scheduled');
  const product = variant('product.updated');
  expect(['clickId', 'showId'].map((f) => nullable(order, ['data', 'order', f]))).toEqual([true, true]);
  expect(['description', 'sourceUrl'].map((f) => nullable(show, ['data', 'show', f]))).toEqual([true, true]);
  expect(['imageUrl', 'sku'].map((f) => nullable(product, ['data', 'product', f]))).toEqual([true, true]);
  expect(['imageUrl', 'sku'].map((f) => nullable(show, ['data', 'show', 'products', '[]', f]))).toEqual([true, true]);
  expect(['id', 'createdAt', 'total'].map((f) => nullable(order, ['data', 'order', f]))).toEqual([false, false, false]);
  expect(['id', 'url', 'price'].map((f) => nullable(product, ['data', 'product', f]))).toEqual([false, false, false]);
  expect(objectAt(order, ['data', 'order']).required).not.toContain('clickId');
});

/** The documented schema of one answer, $refs inlined, as a zod validator. */
function documented(method: string, url: string, status: number, contentType: string): z.ZodType {
  const path = Object.keys(doc.paths).find((p) => new RegExp(`^${p.replace(/\{[^}]+\}/g, '[^/]+')}$`).test(url));
  const op = path ? doc.paths[path]![method] : undefined;
  if (!op) throw new Error(`${method} ${url}: not in the document`);
  const answer = op.responses[String(status)];
  if (!answer) throw new Error(`${method} ${path} answered ${status}, which the document does not list (${Object.keys(op.responses).join(', ')})`);
  const media = answer.content?.[contentType];
  if (!media?.schema) throw new Error(`${method} ${path} ${status} answered ${contentType}; documented: ${Object.keys(answer.content ?? {}).join(', ') || 'no body'}`);
  const inline = JSON.parse(JSON.stringify(media.schema), (_k, v: unknown) => {
    const ref = (v as { $ref?: string } | null)?.$ref;
    return typeof ref === 'string' ? doc.components.schemas[ref.replace('#/components/schemas/', '')] : v;
  }) as Json;
  return z.fromJSONSchema(inline as Parameters<typeof z.fromJSONSchema>[0]);
}

const checked: string[] = [];
/** Calls the service (the admin key on /v1 routes unless `key` says otherwise) and checks the answer against the document. */
const call = async (method: string, url: string, init: { json?: unknown; key?: string | null; headers?: Record<string, string>; body?: string } = {}): Promise<Response> => {
  const r = init.json !== undefined || init.key !== undefined || url.startsWith('/v1/') ? await svc.api(url, { method, ...(init.json !== undefined ? { json: init.json } : {}), ...(init.key !== undefined ? { key: init.key } : {}), ...(init.headers ? { headers: init.headers } : {}), ...(init.body ? { body: init.body } : {}), redirect: 'manual' }) : await fetch(svc.url + url, { method, redirect: 'manual', ...(init.headers ? { headers: init.headers } : {}) });
  const type = (r.headers.get('content-type') ?? '').split(';')[0]!;
  const text = await r.clone().text();
  const pathOnly = url.split('?')[0]!;
  if (r.status === 204 || r.status === 302) {
    documentedNoBody(method.toLowerCase(), pathOnly, r.status);
  } else {
    const schema = documented(method.toLowerCase(), pathOnly, r.status, type);
    const body: unknown = type.endsWith('json') ? JSON.parse(text) : text;
    const parsed = schema.safeParse(body);
    if (!parsed.success) throw new Error(`${method} ${url} ${r.status}: body does not match the document: ${JSON.stringify(parsed.error.issues.slice(0, 5))}\n${text.slice(0, 500)}`);
  }
  checked.push(`${method} ${pathOnly} ${r.status}`);
  return r;
};
const documentedNoBody = (method: string, url: string, status: number): void => {
  const path = Object.keys(doc.paths).find((p) => new RegExp(`^${p.replace(/\{[^}]+\}/g, '[^/]+')}$`).test(url));
  const answer = path ? doc.paths[path]![method]?.responses[String(status)] : undefined;
  if (!answer) throw new Error(`${method} ${url} answered ${status}, which the document does not list`);
  expect(answer.content).toBeUndefined();
};

test('real answers — status, media type and body — are what the document says', async () => {

  const secret = await createPartner(svc, 'oa');
  await createPartner(svc, 'ob');
  await call('GET', '/health/live');
  await call('GET', '/health/ready');
  await call('GET', '/metrics');
  await call('GET', '/ops');
  await call('GET', '/ops/app.js');
  await call('GET', '/ops/nope.js');
  // Partners
  await call('POST', '/v1/partners', { json: { id: 'oc', name: 'C' } });
  await call('POST', '/v1/partners', { json: { id: 'oc', name: 'C' } }); // 409
  await call('POST', '/v1/partners', { json: { id: 'x' } }); // 400 with field errors
  await call('GET', '/v1/partners');
  await call('GET', '/v1/partners/oa');
  await call('GET', '/v1/partners/nobody'); // 404
  await call('GET', '/v1/partners/oa', { key: null }); // 401
  await call('PATCH', '/v1/partners/oa', { json: { name: 'A' } });
  await call('POST', '/v1/partners/oa/webhook-secret/rotate', { json: {} });
  await call('POST', '/v1/partners/oa/webhook-secret/rotate', { headers: { 'content-type': 'application/xml' }, body: '<x/>' }); // 415
  // Keys and a partner key's limits
  const created = await call('POST', '/v1/api-keys', { json: { role: 'partner', partnerId: 'ob', name: 'b' } });
  const bKey = (await created.json()) as { key: string; id: string };
  await call('GET', '/v1/api-keys');
  await call('GET', `/v1/api-keys/${bKey.id}`);
  await call('GET', '/v1/partners/oa', { key: bKey.key }); // 403
  await call('GET', '/v1/api-keys', { key: bKey.key }); // 403
  // Targets
  const target = { id: 'yt', platform: 'youtube', name: 'YT', credentials: { refreshToken: 'r', clientSecret: 'c' }, commissionRateBps: 500, baseUrl: 'http://127.0.0.1:9/youtube' };
  await call('POST', '/v1/partners/oa/targets', { json: target });
  await call('GET', '/v1/partners/oa/targets');
  await call('PATCH', '/v1/partners/oa/targets/yt', { json: { enabled: false } });
  // Events and shows
  // Scheduled near now: the board (a day either side of now) then has a show row to check against the
  // document (with sampleShow's fixed 2026-11-24 it has been empty since 2026-11-25 18:00 UTC).
  const ev = showEvent('show.scheduled', sampleShow('s1', { scheduledAt: isoFromNow(HOUR_MS) }), '2026-11-24T17:00:00Z');
  const first = await sendEvent(svc, 'oa', secret, ev, { webhookId: 'oa-1' });
  const again = await sendEvent(svc, 'oa', secret, ev, { webhookId: 'oa-1' });
  const bad = await sendEvent(svc, 'oa', 'whsec_' + Buffer.from('wrong-secret-wrong-secret-wrong!').toString('base64'), ev);
  for (const [r, status] of [[first, 202], [again, 200], [bad, 401]] as const) {
    expect(r.status).toBe(status);
    expect(documented('post', '/v1/partners/oa/events', r.status, (r.headers.get('content-type') ?? '').split(';')[0]!).safeParse(await r.json()).success).toBe(true);
  }
  await call('GET', '/v1/partners/oa/shows');
  await call('GET', '/v1/partners/oa/shows?state=live');
  await call('GET', '/v1/partners/oa/shows?state=nonsense'); // 400
  await call('GET', '/v1/partners/oa/shows/s1');
  await call('GET', '/v1/partners/oa/shows/nope'); // 404
  await call('POST', '/v1/partners/oa/shows/s1/ingest/rotate', { json: {} });
  await call('PUT', '/v1/partners/oa/shows/s1/mirrors/yt', { json: { externalId: 'ext-1' } }); // 422: not a YouTube video id
  await call('PUT', '/v1/partners/oa/shows/s1/mirrors/yt', { json: { externalId: 'dQw4w9WgXcQ' } });
  await call('POST', '/v1/partners/oa/shows/s1/mirrors/yt/resync', { json: {} });
  await call('GET', '/v1/partners/oa/shows/s1/attribution');
  await call('GET', '/v1/partners/oa/attribution');
  await call('GET', '/v1/partners/oa/attribution?format=csv');
  await call('GET', '/v1/partners/oa/attribution/orders/o-1'); // 404
  // Reconciliations, outbound webhooks, audit, ops reads
  const rec = await call('POST', '/v1/partners/oa/reconciliations', { json: { from: '2026-11-01T00:00:00Z', to: '2026-11-02T00:00:00Z' } });
  await call('GET', '/v1/partners/oa/reconciliations');
  await call('GET', `/v1/reconciliations/${((await rec.json()) as { id: string }).id}`);
  const ep = await call('POST', '/v1/partners/oa/endpoints', { json: { url: 'http://127.0.0.1:9/hook', events: ['mirror.updated'] } });
  const epId = ((await ep.json()) as { id: string }).id;
  await call('GET', '/v1/partners/oa/endpoints');
  await call('GET', `/v1/partners/oa/endpoints/${epId}`);
  await call('PATCH', `/v1/partners/oa/endpoints/${epId}`, { json: { description: 'd' } });
  await call('POST', `/v1/partners/oa/endpoints/${epId}/rotate-secret`, { json: {} });
  await call('GET', `/v1/partners/oa/endpoints/${epId}/attempts`);
  await call('GET', '/v1/partners/oa/messages/msg_none'); // 404
  await call('GET', '/v1/audit?limit=5');
  expect(await (await call('GET', '/v1/ops/board')).text()).toContain('"s1"');
  await call('GET', '/v1/ops/partners/oa/shows/s1');
  await call('GET', '/v1/ops/reconciliations');
  await call('GET', '/v1/ops/endpoints');
  await call('POST', '/v1/ops/session', { key: null, json: { key: 'not-a-key' } }); // 401
  await call('DELETE', '/v1/ops/session', { key: null });
  await call('POST', '/v1/platform-webhooks/yt', { key: null, headers: { 'content-type': 'application/json' }, body: '{}' }); // youtube sends none: 404
  await call('GET', '/l/unknown-code'); // 404
  // No external edge here (RELAY_EDGE defaults to embedded, RELAY_EDGE_INTERNAL_URL to a URL): the 404
  // names the setting that turns the callbacks on (it said RELAY_EDGE_INTERNAL_URL was not set).
  const edge = await call('POST', '/v1/relay/edge/on-publish', { key: null, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'app=live&name=k' });
  expect(edge.status).toBe(404);
  expect(((await edge.json()) as { detail: string }).detail).toMatch(/RELAY_EDGE is not none/);
  // A path parameter over its length is a 414 before the key is checked, on every route with one (it
  // was missing from every operation of the document).
  const long = 'x'.repeat(129);
  expect((await call('GET', `/v1/partners/${long}/shows`)).status).toBe(414);
  expect((await call('GET', `/v1/partners/oa/attribution/orders/${'o'.repeat(257)}`)).status).toBe(414);
  expect((await call('POST', `/v1/platform-webhooks/${long}`, { key: null, headers: { 'content-type': 'application/json' }, body: '{}' })).status).toBe(414);
  expect((await call('GET', `/l/${long}`)).status).toBe(414);
  await call('DELETE', `/v1/partners/oa/endpoints/${epId}`);
  await call('DELETE', '/v1/partners/oa/targets/yt');
  await call('DELETE', `/v1/api-keys/${bKey.id}`);
  expect(checked.length).toBeGreaterThan(50);
});

test('while Redis is down the answers are the documented 503 problem (and liveness stays 200)', async () => {
  const secret = await createPartner(svc, 'od');
  await svc.redis.stop('SIGKILL');
  try {
    const before = checked.length;
    expect((await call('GET', '/health/live')).status).toBe(200);
    expect((await call('GET', '/health/ready')).status).toBe(503);
    expect((await call('GET', '/v1/partners')).status).toBe(503);
    expect((await call('GET', '/v1/partners/od/shows')).status).toBe(503);
    const ev = await sendEvent(svc, 'od', secret, showEvent('show.scheduled', sampleShow('s9'), '2026-11-24T17:00:00Z'));
    expect(ev.status).toBe(503);
    expect(documented('post', '/v1/partners/od/events', 503, 'application/problem+json').safeParse(await ev.json()).success).toBe(true);
    const metrics = await call('GET', '/metrics'); // 200 or 503: either is documented
    expect([200, 503]).toContain(metrics.status);
    expect(checked.length - before).toBe(5);
  } finally {
    await svc.redis.start();
    // Reconnected before the service is closed (a close while its clients reconnect would hang).
    await waitFor(async () => (await fetch(`${svc.url}/health/ready`)).status === 200);
  }
});

test('a body declared JSON that is not JSON is a documented 400 on every operation that reads a body', async () => {
  // Fastify's JSON parser answers 400 before any handler runs, also on routes without a body schema
  // (DELETE /v1/relay, DELETE /v1/ops/session, the nginx-rtmp callbacks), whose operations listed no 400.
  const ops = Object.entries(doc.paths).flatMap(([path, byMethod]) => Object.keys(byMethod).filter((m) => ['post', 'put', 'patch', 'delete'].includes(m)).map((m) => [m, path] as const));
  expect(ops.length).toBeGreaterThan(20);
  for (const [method, path] of ops) {
    const url = path.replace(/\{partnerId\}/g, 'oa').replace(/\{[^}]+\}/g, 'nope');
    const r = await call(method.toUpperCase(), url, { headers: { 'content-type': 'application/json' }, body: '{not json' });
    // The signed routes read the raw body and check the sender first (401/404, documented: call checks).
    if (!/\/events$|^\/v1\/platform-webhooks\//.test(path)) expect([method, path, r.status]).toEqual([method, path, 400]);
  }
});

/** Writes `request` on a new connection; resolves with the answer once the server closed it. (fetch sends no Expect, no 16 KiB of headers, no half request.) */
function rawExchange(request: string): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  const { port } = new URL(svc.url);
  return new Promise((resolve, reject) => {
    const sock = connect(Number(port), '127.0.0.1', () => sock.write(request));
    let got = '';
    sock.on('data', (d: Buffer) => (got += d.toString('utf8')));
    sock.on('error', reject);
    // No answer at all (the server kept the connection): status 0, not the test's timeout.
    const gaveUp = setTimeout(() => sock.destroy(), 3 * REQUEST_TIMEOUT_MS + 5000);
    sock.on('close', () => {
      clearTimeout(gaveUp);
      const [head = '', body = ''] = got.split('\r\n\r\n');
      const [statusLine = '', ...lines] = head.split('\r\n');
      const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3}) /.exec(statusLine)?.[1] ?? 0), headers, body });
    });
  });
}

test('408, 417 and 431, which any operation can answer, are provoked and match the document; a 405 is what its description says', async () => {
  const secret = await createPartner(svc, 'oe');
  const checkRaw = async (method: string, path: string, request: string, status: number): Promise<void> => {
    const r = await rawExchange(request);
    expect([method, path, r.status]).toEqual([method, path, status]);
    expect(r.headers['x-request-id']).toMatch(/^\S+$/);
    const schema = documented(method.toLowerCase(), path, r.status, (r.headers['content-type'] ?? '').split(';')[0]!);
    expect(schema.safeParse(JSON.parse(r.body)).success).toBe(true);
  };
  // 417: a signed partner event and an API-key route, with an expectation that is not 100-continue.
  const ev = JSON.stringify(showEvent('show.scheduled', sampleShow('s417'), '2026-11-24T17:00:00Z'));
  const ts = Math.floor(Date.now() / 1000);
  await checkRaw(
    'POST',
    '/v1/partners/oe/events',
    `POST /v1/partners/oe/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 200-ok\r\nConnection: close\r\n` +
      `webhook-id: msg_417\r\nwebhook-timestamp: ${ts}\r\nwebhook-signature: ${signatureHeader(secret, 'msg_417', ts, ev)}\r\nContent-Length: ${Buffer.byteLength(ev)}\r\n\r\n${ev}`,
    417,
  );
  await checkRaw('GET', '/v1/partners', `GET /v1/partners HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN_KEY}\r\nExpect: x\r\nConnection: close\r\n\r\n`, 417);
  // 431: headers over 16 KiB.
  await checkRaw('GET', '/health/live', `GET /health/live HTTP/1.1\r\nHost: x\r\nx-big: ${'x'.repeat(17 * 1024)}\r\n\r\n`, 431);
  // 408: a body that never arrives whole, and headers that never end (HTTP_REQUEST_TIMEOUT_MS).
  const started = Date.now();
  await checkRaw('POST', '/v1/partners', `POST /v1/partners HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN_KEY}\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{"id":`, 408);
  await checkRaw('GET', '/health/ready', 'GET /health/ready HTTP/1.1\r\nHost: x\r\n', 408);
  expect(Date.now() - started).toBeGreaterThanOrEqual(2 * REQUEST_TIMEOUT_MS - 100);
  // 405 belongs to no operation (it answers a method the path has none for), and OpenAPI 3 has no
  // document-wide responses: the description says it, and the answer is what it says.
  const info = (doc as unknown as { info: { description: string } }).info.description;
  expect(info).toMatch(/`405` with an `Allow` header/);
  expect(info).toMatch(/`408`.*`417`.*`431`/);
  const r = await fetch(`${svc.url}/health/live`, { method: 'DELETE' });
  expect([r.status, r.headers.get('allow'), r.headers.get('content-type')?.split(';')[0]]).toEqual([405, 'GET, HEAD', 'application/problem+json']);
  const problemSchema = z.fromJSONSchema(doc.components.schemas['Problem'] as Parameters<typeof z.fromJSONSchema>[0]);
  expect(problemSchema.safeParse(await r.json()).success).toBe(true);
}, 60_000);

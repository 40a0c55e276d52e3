/**
 * Operators' names for partners and targets are shown in the ops console, the lists and the audit: a
 * NUL, an ESC or a line end in one was stored as sent (201). Now a 400 naming the field, nothing stored.
 * (A partner's event text is kept as sent and made fit where it leaves, src/targets/platform-text.ts:
 * test/integration/events.snapshot-issues.test.ts, test/integration/platform-text.adapters.test.ts.)
 * Real service, real Redis.
 */
import { servicePerFile, type TestService } from '../helpers/service.js';

let svc: TestService;
servicePerFile('nm', (started) => ({ svc } = started));

async function expectNameRefused(r: Response): Promise<void> {
  expect(r.status).toBe(400);
  expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(((await r.json()) as { errors: { path: string; message: string }[] }).errors).toEqual([{ path: 'body.name', message: expect.stringMatching(/control characters/) }]);
}

async function targetNames(partnerId: string): Promise<string[]> {
  const r = await svc.api(`/v1/partners/${partnerId}/targets`);
  expect(r.status).toBe(200);
  return ((await r.json()) as { targets: { name: string }[] }).targets.map((t) => t.name);
}

test.each(['a\u0000b', 'esc \u001b[31m', 'two\nlines', 'tab\there', 'del\u007f', 'c1\u0085'])('a partner or target name holding %j is a 400 naming body.name, nothing stored', async (name) => {
  await expectNameRefused(await svc.api('/v1/partners', { json: { id: 'nm-bad', name } }));
  expect((await svc.api('/v1/partners/nm-bad')).status).toBe(404);
  await expectNameRefused(await svc.api('/v1/partners/nm', { method: 'PATCH', json: { name } }));
  const target = { platform: 'facebook', credentials: { pageId: '1', pageAccessToken: 't' }, baseUrl: 'http://127.0.0.1:9/facebook', commissionRateBps: 0 };
  await expectNameRefused(await svc.api('/v1/partners/nm/targets?verify=false', { json: { id: 'nm-t-bad', name, ...target } }));
  expect(await targetNames('nm')).toEqual([]);
});

test('names with emoji, right-to-left letters and inner spaces are taken as they are', async () => {
  const name = 'Boutique 🎉 مرحبا  two  spaces';
  expect((await svc.api('/v1/partners', { json: { id: 'nm-ok', name } })).status).toBe(201);
  const t = await svc.api('/v1/partners/nm-ok/targets?verify=false', { json: { id: 'nm-t-ok', name, platform: 'facebook', credentials: { pageId: '1', pageAccessToken: 't' }, baseUrl: 'http://127.0.0.1:9/facebook', commissionRateBps: 0 } });
  expect(t.status).toBe(201);
  await expectNameRefused(await svc.api('/v1/partners/nm-ok/targets/nm-t-ok', { method: 'PATCH', json: { name: 'x\u0000' } }));
  expect(await targetNames('nm-ok')).toEqual([name]);
});

test('an API key name is one line without control characters, an endpoint description may span lines but holds no other control character: a 400 naming the field, nothing stored', async () => {
  const refused = async (r: Response, path: string): Promise<void> => {
    expect(r.status).toBe(400);
    expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(((await r.json()) as { errors: { path: string; message: string }[] }).errors).toEqual([{ path, message: expect.stringMatching(/control characters/) }]);
  };
  const keys = async (): Promise<number> => ((await (await svc.api('/v1/api-keys')).json()) as { keys: unknown[] }).keys.length;
  const before = await keys();
  for (const name of ['a\u0000b', 'esc \u001b[2J', 'two\nlines']) await refused(await svc.api('/v1/api-keys', { json: { role: 'viewer', name } }), 'body.name');
  expect(await keys()).toBe(before);
  expect((await svc.api('/v1/api-keys', { json: { role: 'viewer', name: 'CI 🎉 key' } })).status).toBe(201);

  expect((await svc.api('/v1/partners', { json: { id: 'nm-ep', name: 'Endpoints' } })).status).toBe(201);
  const endpoint = { url: 'https://hooks.example.com/nm', events: ['mirror.updated'] };
  for (const description of ['nul\u0000', 'bell\u0007', 'c1\u009b31m']) await refused(await svc.api('/v1/partners/nm-ep/endpoints', { json: { ...endpoint, description } }), 'body.description');
  const created = await svc.api('/v1/partners/nm-ep/endpoints', { json: { ...endpoint, description: 'line one\n\tline two\r\n' } });
  expect(created.status).toBe(201);
  const { id } = (await created.json()) as { id: string };
  await refused(await svc.api(`/v1/partners/nm-ep/endpoints/${id}`, { method: 'PATCH', json: { description: 'x\u001b' } }), 'body.description');
});

/**
 * Stream keys are credentials (issue 10 item 8, README "Video relay"): encrypted at rest like target
 * credentials. Every ingest key a show's mirrors carry — given by the platform's API (YouTube's
 * stream name, Facebook's secure_stream_url) or by an operator linking a show made by hand — and the
 * show's own ingest key are absent from every raw value in Redis, while the operator still sees them
 * in the show view and the relay still pushes to them (relay.push.test.ts).
 */
import type { TestService } from '../helpers/service.js';
import type { TestSim } from '../helpers/sim.js';
import { ALL_PLATFORMS, platformsPerFile } from '../helpers/platforms.js';
import { scheduleRelayedShow, viewOf } from '../helpers/relay.js';
import { redisEntries } from '../helpers/redis-dump.js';

let svc: TestService;
let sim: TestSim;
let secret: string;
const P = 'rest-p';

platformsPerFile(P, (started) => ({ svc, sim, secret } = started), { workers: true, scheduler: true });

test('no stream key, platform-given or operator-given, is stored in clear in Redis; the operator still sees them', async () => {
  await scheduleRelayedShow(svc, sim, P, secret, 'rest1');
  const v = await viewOf(svc, P, 'rest1');
  const keys = new Map(v.mirrors.map((m) => [m.platform, m.ingest?.streamKey]));
  expect([...keys.keys()].sort()).toEqual([...ALL_PLATFORMS].sort());
  for (const [platform, key] of keys) expect([platform, (key ?? '').length >= 8]).toEqual([platform, true]);
  const showKey = v.show.ingest.streamKey!;
  expect(showKey).toMatch(/^sk_/);

  const values = await redisEntries(svc.rt.redis);
  expect(values.length).toBeGreaterThan(10);
  const leaks = values.filter((line) => [showKey, ...keys.values()].some((k) => k && line.includes(k)));
  expect(leaks).toEqual([]);
  // Facebook's secure_stream_url is the URL with the key: neither form is stored.
  const fb = v.mirrors.find((m) => m.platform === 'facebook')!;
  expect(values.filter((l) => l.includes(`${fb.ingest!.url}${fb.ingest!.streamKey}`))).toEqual([]);
}, 120_000);

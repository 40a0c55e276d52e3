/**
 * What a failed delivery leaves behind about its endpoint's URL (src/outbound/delivery.service.ts
 * saveOutcome): the attempt log entry and the delivery's lastError (viewer keys read both: GET
 * …/attempts, GET …/messages/{m}, the ops console's recent failures) and the log lines. The logs carried
 * the endpoint's origin, the error named its host as the request failed on it: a receiver whose token
 * is its host's first label (Pipedream's `eo….m.pipedream.net`) had it in both. A redirect's Location
 * was shown with its path (a webhook.site UUID). Now the URL as maskUrl shows an endpoint's url (its
 * whole path hidden: a short all-letter token in a middle segment looks like a word), the host in an
 * error masked (maskHostIn). No Redis, no send: the repositories are stubs, the log is captured.
 */
import { pino, type Logger } from 'pino';
import { DeliveryService, type DeliveryDeps } from '../../src/outbound/delivery.service.js';
import { newDelivery, type EndpointRecord } from '../../src/outbound/outbound.types.js';

interface Internals {
  saveOutcome(job: object, d: object, ep: object, eventType: string, o: object, log: Logger): Promise<unknown>;
}

const HOST_TOKEN = 'eo3jwbzqd6ltmxx';
const URL_TOKEN = 'PDQUERYTOKEN0123456789';
const PATH_TOKEN = 'abcdefgh';
const URL = `https://${HOST_TOKEN}.m.pipedream.net/${PATH_TOKEN}/in?token=${URL_TOKEN}`;
const UUID = '0f3c2b1a-1234-4abc-9def-0123456789ab';

/** The texts one outcome (`res`) leaves: the attempt's and the delivery's error, and every log line. */
async function leftBy(res: object): Promise<string> {
  const lines: string[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(s) });
  const saved: unknown[] = [];
  const stubs = {
    addAttempt: async (...a: unknown[]) => void saved.push(a),
    recordFailure: async () => undefined,
    recordSuccess: async () => undefined,
    disable: async () => true,
    disableIfFailingSince: async () => true,
    saveDelivery: async (...a: unknown[]) => void saved.push(a),
  };
  const svc = new DeliveryService({ log, timeoutMs: 1_000, retrySchedule: [], endpoints: stubs, messages: stubs } as unknown as DeliveryDeps) as unknown as Internals;
  const ep = { id: 'e1', partnerId: 'p1', url: URL } as unknown as EndpointRecord;
  const outcome = { run: 1, attempts: 0, url: URL, at: Date.now(), res: { retryAfter: undefined, location: undefined, durationMs: 5, ...res }, logged: false };
  await svc.saveOutcome({ partnerId: 'p1', messageId: 'm1', endpointId: 'e1', run: 1 }, newDelivery('e1', 1, 'event'), ep, 'mirror.updated', outcome, log);
  return JSON.stringify(saved) + lines.join('');
}

test('an error naming the host, the last attempt of the schedule: no token in the attempt, lastError or log', async () => {
  const left = await leftBy({ statusCode: null, error: `getaddrinfo ENOTFOUND ${HOST_TOKEN}.m.pipedream.net` });
  expect(left).toContain('getaddrinfo ENOTFOUND ***.m.pipedream.net');
  expect(left).toContain('whole retry schedule');
  expect(left).not.toContain(HOST_TOKEN);
  expect(left).not.toContain(URL_TOKEN);
  expect(left).not.toContain(PATH_TOKEN);
});

test('410 Gone: the log line names the url masked, its path hidden', async () => {
  const left = await leftBy({ statusCode: 410, error: null });
  expect(left).toContain('https://***.m.pipedream.net/***?token=***');
  expect(left).not.toContain(HOST_TOKEN);
  expect(left).not.toContain(PATH_TOKEN);
});

test("a redirect's Location is shown masked, its path hidden", async () => {
  const left = await leftBy({ statusCode: 302, error: null, location: `https://webhook.site/${PATH_TOKEN}/${UUID}?k=${URL_TOKEN}` });
  expect(left).toContain('redirect not followed (Location: https://webhook.site/***?k=***)');
  expect(left).not.toContain(PATH_TOKEN);
  expect(left).not.toContain(UUID);
  expect(left).not.toContain(URL_TOKEN);
});

/**
 * DeliveryService keeps the outcome of a send whose save Redis refused (src/outbound/delivery.service.ts,
 * `unsaved`) for at most 10 min. The map is not in time order: an outcome read by its job's next run and
 * kept again (Redis still refused) goes back at the end with its old `at`. The purge stopped at the first
 * fresh outcome ("insertion order = time order"), so a stale one behind it stayed, and stale outcomes
 * were dropped only when another save was refused. Now each purge drops every stale one, on a keep and
 * on a read. The service's private map and methods are read directly: no Redis, no send.
 */
import { pino } from 'pino';
import { DeliveryService, type DeliveryDeps } from '../../src/outbound/delivery.service.js';

interface Internals {
  unsaved: Map<string, unknown>;
  keepOutcome(key: string, outcome: object): void;
  keptOutcome(key: string, d: object, url: string): unknown;
}

const URL_A = 'https://hooks.example.com/a';
const KEEP_MS = 10 * 60_000;
const realNow = Date.now;
let now = 1_800_000_000_000;
beforeAll(() => {
  Date.now = () => now;
});
afterAll(() => {
  Date.now = realNow;
});

const outcome = (at: number): object => ({ run: 1, attempts: 0, url: URL_A, at, res: { statusCode: 200, durationMs: 5 }, logged: true });

test('an outcome kept again behind a fresher one is purged once stale, and a read purges too', () => {
  const svc = new DeliveryService({ log: pino({ level: 'silent' }), timeoutMs: 1_000 } as unknown as DeliveryDeps) as unknown as Internals;
  const t0 = now;
  svc.keepOutcome('a', outcome(t0));
  now = t0 + 60_000;
  svc.keepOutcome('b', outcome(now));
  // a's job runs again here and Redis refuses its save again: a goes back at the end, its `at` t0.
  now = t0 + 61_000;
  const a = svc.keptOutcome('a', { run: 1, attempts: 0 }, URL_A);
  expect(a).toBeDefined();
  svc.keepOutcome('a', a!);
  expect([...svc.unsaved.keys()]).toEqual(['b', 'a']);

  // a is stale, b is not: another refused save purges a. Before: ['b', 'a', 'c'] (stopped at b).
  now = t0 + KEEP_MS + 30_000;
  svc.keepOutcome('c', outcome(now));
  expect([...svc.unsaved.keys()]).toEqual(['b', 'c']);

  // b is stale now: a read (another delivery's run) purges it, no refused save needed. Before: ['b', 'c'].
  now = t0 + 60_000 + KEEP_MS + 30_000;
  expect(svc.keptOutcome('other', { run: 1, attempts: 0 }, URL_A)).toBeUndefined();
  expect([...svc.unsaved.keys()]).toEqual(['c']);
});

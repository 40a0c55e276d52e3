/**
 * The event makers of the mirror property tests (mirror.property, mirror.property.all): a show's
 * events in phases, each with its own webhook id, so that a test can deliver them permuted and
 * duplicated.
 */
import { sampleShow, waitFor, type TestService } from './service.js';

/** One event and the webhook id it is delivered with (a duplicate reuses it). */
export interface Ev {
  webhookId: string;
  body: unknown;
}

/**
 * For `showId`: `base` (its sample snapshot), `t(m)` (2026-11-24 17:m UTC), `ev(body)` (the next
 * webhook id: `<showId>-e<n>`) and `pin(type, productId, m)` (a pin event at t(m)).
 */
export function phaseEvents(showId: string): {
  base: Record<string, unknown>;
  t: (m: number) => string;
  ev: (body: unknown) => Ev;
  pin: (type: string, productId: string, m: number) => Ev;
} {
  const base = sampleShow(showId);
  const t = (m: number): string => new Date(Date.UTC(2026, 10, 24, 17, m)).toISOString();
  let n = 0;
  const ev = (body: unknown): Ev => ({ webhookId: `${showId}-e${++n}`, body });
  const pin = (type: string, productId: string, m: number): Ev => ev({ type, occurredAt: t(m), data: { showId, productId } });
  return { base, t, ev, pin };
}

/**
 * A phase's sync: the workers run until `done`, then are held (every BullMQ worker paused, its running
 * jobs finished) until the next phase, so that the next phase's events all arrive before any of them is
 * synced. Paused, not stopped: a stop and a start per phase set up a whole worker role (its runtime,
 * connections and BullMQ workers) three times per fast-check run, most of these files' CPU (CI time).
 */
export async function drainPhase(svc: TestService, done: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  if (svc.workers.length) for (const w of svc.workers) w.resume();
  else await svc.startWorkers();
  await waitFor(done, timeoutMs);
  await Promise.all(svc.workers.map((w) => w.pause()));
}

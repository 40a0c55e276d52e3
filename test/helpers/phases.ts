/**
 * The event makers of the mirror property tests (mirror.property, mirror.property.all): a show's
 * events in phases, each with its own webhook id, so that a test can deliver them permuted and
 * duplicated.
 */
import { sampleShow } from './service.js';

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

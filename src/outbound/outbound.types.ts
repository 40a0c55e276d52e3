/** Outbound webhook event types, message and delivery records (README "Outbound webhooks"). */

export const OUTBOUND_EVENT_TYPES = ['mirror.updated', 'attribution.order_attributed', 'reconciliation.completed'] as const;
export type OutboundEventType = (typeof OUTBOUND_EVENT_TYPES)[number];

export interface PreviousSecret {
  sealed: string;
  expiresAt: string;
}

export interface EndpointRecord {
  id: string;
  partnerId: string;
  url: string;
  events: OutboundEventType[];
  description: string | null;
  enabled: boolean;
  /** AES-256-GCM sealed `whsec_…`; never returned after creation/rotation. */
  secretSealed: string;
  /** The secret before the last rotation: deliveries are signed with it too until it expires. */
  previousSecretSealed: string | null;
  previousSecretExpiresAt: string | null;
  /**
   * Earlier rotated-out secrets still in (or, until the next rotation drops them, past) their grace
   * period, newest first; deliveries are signed with every unexpired one. Kept apart from the
   * fields above so that code knowing only one previous secret still reads the newest.
   */
  olderPreviousSecrets: PreviousSecret[];
  disabledAt: string | null;
  disabledReason: string | null;
  /** ms epoch of the first failed attempt since the endpoint last answered 2xx (null: healthy). */
  failingSince: number | null;
  lastSuccessAt: string | null;
  createdAt: string;
  updatedAt: string;
}

/** A message as stored: meta plus the exact body bytes every attempt sends (and signs). */
export interface OutboundMessage {
  id: string;
  partnerId: string;
  type: OutboundEventType;
  /** ISO time the message was created (the payload's `timestamp`). */
  timestamp: string;
  body: string;
}

export type DeliveryStatus = 'pending' | 'delivered' | 'failed';

/** One (message, endpoint) pair. `run` 1 is the emit; each manual redelivery starts a new run. */
export interface DeliveryState {
  endpointId: string;
  state: DeliveryStatus;
  run: number;
  trigger: 'event' | 'manual';
  /** Attempts over all runs, and within the current run (drives the retry schedule). */
  attempts: number;
  runAttempts: number;
  runStartedAt: string | null;
  lastAttemptAt: string | null;
  lastStatusCode: number | null;
  lastError: string | null;
  nextAttemptAt: string | null;
  deliveredAt: string | null;
}

export function newDelivery(endpointId: string, run: number, trigger: DeliveryState['trigger'], attempts = 0): DeliveryState {
  return { endpointId, state: 'pending', run, trigger, attempts, runAttempts: 0, runStartedAt: null, lastAttemptAt: null, lastStatusCode: null, lastError: null, nextAttemptAt: null, deliveredAt: null };
}

/** One HTTP attempt, as listed by GET …/endpoints/{endpointId}/attempts. */
export interface AttemptRecord {
  messageId: string;
  eventType: OutboundEventType;
  /** 1-based, over all runs of this (message, endpoint). */
  attempt: number;
  run: number;
  trigger: DeliveryState['trigger'];
  at: string;
  success: boolean;
  statusCode: number | null;
  error: string | null;
  durationMs: number;
}

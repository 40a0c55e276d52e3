/** Wires the outbound-webhook pieces from runtime parts (kept here so runtime.ts stays a list). */
import type { ConnectionOptions } from 'bullmq';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import type { SecretBox } from '../lib/crypto.js';
import { DeliveryProducer } from '../queues/delivery.queue.js';
import { EndpointRepository } from '../store/endpoint.repository.js';
import type { Keys } from '../store/keys.js';
import { OutboundMessageRepository } from '../store/outbound-message.repository.js';
import type { RedisClient } from '../store/redis.js';
import { DeliveryService } from './delivery.service.js';
import { OutboundService } from './outbound.service.js';

export interface OutboundParts {
  outbound: OutboundService;
  delivery: DeliveryService;
}

export function createOutbound(deps: { redis: RedisClient; keys: Keys; box: SecretBox; config: Config; connection: ConnectionOptions; log: Logger }): OutboundParts {
  const { redis, keys, box, config, log } = deps;
  const endpoints = new EndpointRepository(redis, keys, log.child({ module: 'outbound' }));
  const messages = new OutboundMessageRepository(redis, keys);
  // Messages and their idempotency keys are kept this long after the emit; a message (not its key: another
  // slot) also this long after a retrying delivery's next attempt, and after a redelivery (never shortened).
  const messageTtlSec = config.inboxTtlDays * 86_400;
  const outbound = new OutboundService({
    endpoints,
    messages,
    producer: new DeliveryProducer(deps.connection, keys),
    box,
    log: log.child({ module: 'outbound' }),
    messageTtlSec,
    secretRotationGraceMs: config.secretRotationGraceHours * 3_600_000,
    endpointsPerPartner: config.outboundEndpointsPerPartner,
  });
  const delivery = new DeliveryService({
    endpoints,
    messages,
    box,
    log: log.child({ module: 'delivery' }),
    timeoutMs: config.outboundTimeoutMs,
    messageTtlSec,
    allowPrivateDestinations: config.allowPrivateDestinations,
    // A fifth of the process's delivery slots is a partner's share once slots run short: a partner's
    // hanging endpoints cannot take them all; and partners whose attempts hang leave a fifth of the slots
    // (at least one when there are two) to the others, however many of them hang (DeliveryService, "Fairness").
    fairness: {
      slots: config.outboundConcurrency,
      share: Math.max(1, Math.ceil(config.outboundConcurrency / 5)),
      reserve: Math.min(Math.ceil(config.outboundConcurrency / 5), config.outboundConcurrency - 1),
    },
    ...(config.outboundRetryScheduleMs ? { retrySchedule: config.outboundRetryScheduleMs } : {}),
  });
  return { outbound, delivery };
}

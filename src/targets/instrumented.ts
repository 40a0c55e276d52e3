/**
 * Metrics around every platform operation of an adapter: calls by platform / operation / outcome and
 * their latency (src/lib/metrics.ts). The operation label is the adapter method's name, from a fixed
 * list, so its cardinality is bounded whatever the platform's URLs look like.
 */
import { performance } from 'node:perf_hooks';
import { platformCallDuration, platformCalls } from '../lib/metrics.js';
import type { TargetAdapter } from './target.adapter.js';
import { isTargetError } from './target.errors.js';

export const PLATFORM_OPERATIONS = [
  'resolveCapabilities',
  'createShow',
  'attachShow',
  'updateShow',
  'startShow',
  'endShow',
  'cancelShow',
  'pin',
  'unpin',
  'listOrders',
  'orderDetails',
  'verifyCredentials',
  'accountId',
  'checkReadiness',
] as const;
const OPS = new Set<string>(PLATFORM_OPERATIONS);

export function outcomeOf(err: unknown): string {
  return isTargetError(err) ? err.kind : 'error';
}

export function instrument<A extends TargetAdapter>(adapter: A): A {
  // One wrapper per operation and method, made on first use (not one closure per property read).
  const wrapped = new Map<string, { fn: unknown; wrapper: (...args: unknown[]) => Promise<unknown> }>();
  return new Proxy(adapter, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof prop !== 'string' || typeof value !== 'function' || !(OPS.has(prop) || prop === 'orderPages')) return value;
      const hit = wrapped.get(prop);
      if (hit?.fn === value) return hit.wrapper;
      if (prop === 'orderPages') {
        // The paged report is the listOrders operation: one call (all its pages) per iteration.
        const pages = value as (...args: unknown[]) => AsyncIterable<unknown>;
        const labels = { platform: target.platform, operation: 'listOrders' };
        const pagesWrapper = async function* (...args: unknown[]): AsyncGenerator<unknown> {
          const end = platformCallDuration.startTimer(labels);
          try {
            yield* pages.apply(target, args);
            platformCalls.inc({ ...labels, outcome: 'ok' });
          } catch (err) {
            platformCalls.inc({ ...labels, outcome: outcomeOf(err) });
            throw err;
          } finally {
            end();
          }
        };
        wrapped.set(prop, { fn: value, wrapper: pagesWrapper as unknown as (...args: unknown[]) => Promise<unknown> });
        return pagesWrapper;
      }
      const fn = value as (...args: unknown[]) => Promise<unknown>;
      const labels = { platform: target.platform, operation: prop };
      const okLabels = { ...labels, outcome: 'ok' };
      // Timed with performance.now() and one observe: the histogram's startTimer makes two closures,
      // an hrtime pair and a merged label object per call.
      const wrapper = async (...args: unknown[]): Promise<unknown> => {
        const t0 = performance.now();
        try {
          const result = await fn.apply(target, args);
          platformCalls.inc(okLabels);
          return result;
        } catch (err) {
          platformCalls.inc({ ...labels, outcome: outcomeOf(err) });
          throw err;
        } finally {
          platformCallDuration.observe(labels, (performance.now() - t0) / 1000);
        }
      };
      wrapped.set(prop, { fn: value, wrapper });
      return wrapper;
    },
  });
}

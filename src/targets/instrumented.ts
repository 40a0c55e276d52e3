/**
 * What wraps every platform operation of an adapter: metrics (calls by platform / operation / outcome
 * and their latency, src/lib/metrics.ts; the operation label is the adapter method's name, from a fixed
 * list, so its cardinality is bounded whatever the platform's URLs look like), and the redaction of the
 * target's secrets from every error the operation throws (openAdapter).
 */
import { performance } from 'node:perf_hooks';
import { platformCallDuration, platformCalls } from '../lib/metrics.js';
import { redactSecrets } from '../lib/redact.js';
import type { AccessToken, AdapterContext, AdapterFactory, TargetAdapter, TokenStore } from './target.adapter.js';
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
/**
 * Methods whose errors are redacted but not measured: a webhook's verification is mostly local (its
 * signature), and TikTok's read of the order it names is one more call (no new operation label).
 */
const REDACTED_ONLY = new Set<string>(['handleWebhook']);

/** Every method of the adapter interface, each wrapped by instrument (a method added later must be). */
type AdapterMethod = { [K in keyof TargetAdapter]-?: NonNullable<TargetAdapter[K]> extends (...args: never[]) => unknown ? K : never }[keyof TargetAdapter];
type Unwrapped = Exclude<AdapterMethod, (typeof PLATFORM_OPERATIONS)[number] | 'orderPages' | 'handleWebhook'>;
// Fails to compile when an adapter method is left out of the wrapped set (its errors would not be redacted).
const everyMethodWrapped: [Unwrapped] extends [never] ? true : Unwrapped = true;
void everyMethodWrapped;

export function outcomeOf(err: unknown): string {
  return isTargetError(err) ? err.kind : 'error';
}

/**
 * Credential fields that name an account, an app or a setting, or a public handle (TikTok's
 * creatorUsername), not a secret: kept in error texts (they tell which account; a handle such as
 * "products" would garble every text with the word). Every other field (tokens, secrets, API keys, webhook header values, fields of
 * platforms added later) is a secret.
 */
const NOT_SECRET: ReadonlySet<string> = new Set(['pageId', 'clientId', 'appKey', 'shopCipher', 'creatorUsername', 'region', 'privacyStatus', 'showUrlTemplate', 'webhookHeaderName']);

/** The secret values of a target's (opened) credentials. */
function credentialSecrets(credentials: Record<string, string>): string[] {
  return Object.entries(credentials).flatMap(([field, value]) => (NOT_SECRET.has(field) ? [] : [value]));
}

/**
 * Token values kept for redaction besides the credentials: the current access and refresh tokens and
 * those of the last few refreshes (an error quotes what its own call sent: a token it just read or
 * obtained). A cached adapter lives as long as its target record (SyncService.adapterFor), through
 * every refresh: keeping every token it saw grew without bound, and each error scanned them all.
 */
export const RECENT_TOKENS = 8;

/**
 * What an adapter's errors are redacted of: its credentials' secret fields (fixed) and the
 * RECENT_TOKENS tokens it noted last (a token noted again is the newest again).
 */
class TargetSecrets implements Iterable<string> {
  private readonly fixed: readonly string[];
  /** Oldest first. */
  private readonly recent: string[] = [];

  constructor(credentials: Record<string, string>) {
    this.fixed = credentialSecrets(credentials);
  }

  note(value: string | undefined): void {
    if (!value) return;
    const at = this.recent.indexOf(value);
    if (at === this.recent.length - 1 && at >= 0) return;
    if (at >= 0) this.recent.splice(at, 1);
    this.recent.push(value);
    if (this.recent.length > RECENT_TOKENS) this.recent.shift();
  }

  *[Symbol.iterator](): Iterator<string> {
    yield* this.fixed;
    yield* this.recent;
  }

  /** `text` without these secrets (what an adapter puts in a log line of its own). */
  redact(text: string): string {
    return redactSecrets(text, this);
  }
}

/**
 * `err` with `secrets` out of its message and stack (redactSecrets): a copy of the same class and
 * fields (a shared refresh's error reaches every caller that waited on it: it is not changed itself),
 * or `err` itself when it holds none.
 */
function redactError(err: unknown, secrets: Iterable<string>): unknown {
  if (!(err instanceof Error)) return err;
  const message = redactSecrets(err.message, secrets);
  const stack = err.stack === undefined ? undefined : redactSecrets(err.stack, secrets);
  if (message === err.message && stack === err.stack) return err;
  const copy = Object.create(Object.getPrototypeOf(err) as object) as Error;
  Object.defineProperties(copy, Object.getOwnPropertyDescriptors(err));
  Object.defineProperty(copy, 'message', { value: message, enumerable: false, writable: true, configurable: true });
  if (stack !== undefined) Object.defineProperty(copy, 'stack', { value: stack, enumerable: false, writable: true, configurable: true });
  return copy;
}

/** `store`, noting every token (access and refresh) that passes through it into `seen`. */
function noting(store: TokenStore, seen: TargetSecrets): TokenStore {
  const note = (t: AccessToken | null | undefined): void => {
    seen.note(t?.refreshToken);
    seen.note(t?.accessToken);
  };
  return {
    get: async () => {
      const t = await store.get();
      note(t);
      return t;
    },
    set: async (token) => {
      note(token);
      await store.set(token);
    },
    clear: () => store.clear(),
    dropGrant: (refreshToken) => store.dropGrant(refreshToken),
    expire: (accessToken) => store.expire(accessToken),
    refreshed: async (next, used, from) => {
      note(next);
      const t = await store.refreshed(next, used, from);
      note(t);
      return t;
    },
    refreshing: (ms) => store.refreshing(ms),
  };
}

/**
 * The adapter of `ctx`'s target as the workers and the credential check use it: instrumented, and every
 * error its platform operations throw (whose text may quote the platform's answer: Graph's "Malformed
 * access token EAAG…", an OAuth `error_description`) without the target's secrets, those of its
 * credentials and the last tokens it got from or stored in its token store (TargetSecrets). That text
 * becomes a mirror's or a pin's `lastError`, a credential check's 422 detail, the mirror.updated webhook,
 * a platform webhook's 400 and log lines. The adapter's own log lines use `ctx.redact`.
 */
export function openAdapter(factory: AdapterFactory, ctx: AdapterContext): TargetAdapter {
  const secrets = new TargetSecrets(ctx.target.credentials);
  return instrument(factory({ ...ctx, tokens: noting(ctx.tokens, secrets), redact: (text) => secrets.redact(text) }), secrets);
}

/**
 * `secrets`: what every thrown error is redacted of (read at the throw: it changes with the tokens).
 * The platform operations are measured and redacted; handleWebhook (REDACTED_ONLY) is redacted only.
 */
function instrument<A extends TargetAdapter>(adapter: A, secrets: Iterable<string>): A {
  // One wrapper per operation and method, made on first use (not one closure per property read).
  const wrapped = new Map<string, { fn: unknown; wrapper: (...args: unknown[]) => Promise<unknown> }>();
  return new Proxy(adapter, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof prop !== 'string' || typeof value !== 'function' || !(OPS.has(prop) || prop === 'orderPages' || REDACTED_ONLY.has(prop))) return value;
      const hit = wrapped.get(prop);
      if (hit?.fn === value) return hit.wrapper;
      if (REDACTED_ONLY.has(prop)) {
        const fn = value as (...args: unknown[]) => Promise<unknown>;
        const redacting = async (...args: unknown[]): Promise<unknown> => {
          try {
            return await fn.apply(target, args);
          } catch (err) {
            throw redactError(err, secrets);
          }
        };
        wrapped.set(prop, { fn: value, wrapper: redacting });
        return redacting;
      }
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
            throw redactError(err, secrets);
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
          throw redactError(err, secrets);
        } finally {
          platformCallDuration.observe(labels, (performance.now() - t0) / 1000);
        }
      };
      wrapped.set(prop, { fn: value, wrapper });
      return wrapper;
    },
  });
}

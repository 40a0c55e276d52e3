/**
 * In-memory AdapterContext / OpContext for adapter-level tests: the adapter under test talks real HTTP
 * to a simulator, while tokens, the limiter and intents live in plain objects the test can inspect and
 * rig (e.g. mark a `once` step as started-but-not-completed to replay a crash).
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { DEFAULT_FACEBOOK_GRAPH_VERSION } from '../../src/config/config.js';
import type { AccessToken, AdapterContext, Once, OpContext, PlatformSettings, RateLimiter, RecoverAttempt, TargetRef, TokenStore } from '../../src/targets/target.adapter.js';

export class MemoryTokenStore implements TokenStore {
  token: AccessToken | null = null;
  sets = 0;
  clears = 0;
  async get(): Promise<AccessToken | null> {
    return this.token;
  }
  async set(token: AccessToken): Promise<void> {
    this.sets++;
    this.token = token;
  }
  async clear(): Promise<void> {
    this.clears++;
    this.token = null;
  }
  async dropGrant(refreshToken: string | undefined): Promise<boolean> {
    if (this.token && this.token.refreshToken !== refreshToken) return false;
    this.clears++;
    this.token = null;
    return true;
  }
  expires = 0;
  async expire(accessToken: string): Promise<void> {
    this.expires++;
    if (this.token?.accessToken === accessToken) this.token = { ...this.token, expiresAt: 0 };
  }
  /** A refresh's token is stored (one process: nothing else changes the record meanwhile). */
  /** One process: nothing else waits for its refreshes. */
  async refreshing(): Promise<() => Promise<void>> {
    return async () => undefined;
  }
  async refreshed(next: AccessToken): Promise<AccessToken> {
    await this.set(next);
    return next;
  }
}

export class RecordingLimiter implements RateLimiter {
  readonly acquired: number[] = [];
  readonly blocks: { untilMs: number; reason: string; useCase?: string }[] = [];
  /** The use case each acquire named (undefined: none). */
  readonly useCases: (string | readonly string[] | undefined)[] = [];
  async acquire(cost = 1, useCase?: string | readonly string[]): Promise<void> {
    this.acquired.push(cost);
    this.useCases.push(useCase);
  }
  async blockUntil(untilMs: number, reason: string, useCase?: string): Promise<void> {
    this.blocks.push({ untilMs, reason, ...(useCase !== undefined ? { useCase } : {}) });
  }
}

type StepRecord = { state: 'started'; startedAt: string } | { state: 'completed'; json: string };

/** The documented Once semantics, in memory (results round-trip through JSON like the Redis store). */
export class MemoryOnce {
  readonly steps = new Map<string, StepRecord>();
  readonly calls: { step: string; ran: boolean; recovered: boolean }[] = [];

  readonly once: Once = async <T>(step: string, run: () => Promise<T>, recover?: (attempt: RecoverAttempt) => Promise<T | null>): Promise<T> => {
    const record = this.steps.get(step);
    if (record?.state === 'completed') {
      this.calls.push({ step, ran: false, recovered: false });
      return JSON.parse(record.json) as T;
    }
    if (record?.state === 'started' && recover) {
      // like the Redis store: since when the earliest attempt that left the step started may have made it
      const found = await recover({ since: record.startedAt });
      if (found !== null) {
        this.steps.set(step, { state: 'completed', json: JSON.stringify(found) });
        this.calls.push({ step, ran: false, recovered: true });
        return JSON.parse(JSON.stringify(found)) as T;
      }
    }
    this.steps.set(step, { state: 'started', startedAt: record?.state === 'started' ? record.startedAt : new Date().toISOString() });
    const result = await run();
    const json = JSON.stringify(result);
    this.steps.set(step, { state: 'completed', json });
    this.calls.push({ step, ran: true, recovered: record?.state === 'started' });
    return JSON.parse(json) as T;
  };

  /** OpContext.recorded: a completed step's result, else undefined; nothing recorded, nothing counted in `calls`. */
  readonly recorded = async <T>(step: string): Promise<T | undefined> => {
    const record = this.steps.get(step);
    return record?.state === 'completed' ? (JSON.parse(record.json) as T) : undefined;
  };

  /** Replays a crash: the step was started (the remote call may have happened) but no result was stored. */
  markStarted(step: string, startedAt = new Date().toISOString()): void {
    this.steps.set(step, { state: 'started', startedAt });
  }
}

export interface TestAdapterContext {
  ctx: AdapterContext;
  tokens: MemoryTokenStore;
  limiter: RecordingLimiter;
  /** Every log line the adapter wrote (JSON strings), to check that no secret leaks. */
  logs: string[];
}

export function buildAdapterContext(opts: {
  platform?: TargetRef['platform'];
  baseUrl: string | undefined;
  credentials: Record<string, string>;
  timeoutMs?: number;
  targetId?: string;
  partnerId?: string;
  settings?: Partial<PlatformSettings>;
}): TestAdapterContext {
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logs.push(chunk.toString('utf8'));
      done();
    },
  });
  const tokens = new MemoryTokenStore();
  const limiter = new RecordingLimiter();
  const ctx: AdapterContext = {
    target: {
      id: opts.targetId ?? 'tgt_test',
      partnerId: opts.partnerId ?? 'ptn_test',
      platform: opts.platform ?? 'youtube',
      baseUrl: opts.baseUrl,
      credentials: opts.credentials,
    },
    tokens,
    limiter,
    log: pino({ level: 'debug' }, sink),
    timeoutMs: opts.timeoutMs ?? 5_000,
    settings: { facebookGraphVersion: DEFAULT_FACEBOOK_GRAPH_VERSION, ...opts.settings },
  };
  return { ctx, tokens, limiter, logs };
}

export function buildOpContext(marker: string, store: MemoryOnce = new MemoryOnce()): OpContext & { store: MemoryOnce } {
  return { once: store.once, recorded: store.recorded, marker, store };
}

/**
 * A `once` that replays a crash at `crashStep`: the first time that step runs, its request is made for
 * real, then the worker "dies" before the result is recorded (the step stays started in `store`).
 * Every other call is `store.once`.
 */
export function crashOnce(store: MemoryOnce, crashStep: string): Once {
  let crashed = false;
  return async <T>(step: string, run: () => Promise<T>, recover?: (attempt: RecoverAttempt) => Promise<T | null>): Promise<T> => {
    if (step === crashStep && !crashed) {
      crashed = true;
      store.markStarted(step);
      await run();
      throw new Error('worker killed');
    }
    return store.once(step, run, recover);
  };
}

/** The error `p` rejects with (the test fails when it resolves). */
export async function caught(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

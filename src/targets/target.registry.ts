/** Platform → adapter factory and shared account limits. The only place that lists the adapters. */
import type { WindowLimit } from '../store/rate-limiter.js';
import type { AdapterFactory, Platform } from './target.adapter.js';
import { createYoutubeAdapter } from './youtube/youtube.adapter.js';

const FACTORIES: Partial<Record<Platform, AdapterFactory>> = {
  youtube: createYoutubeAdapter,
};

/** Request windows per account, as documented by each platform (YouTube is quota-based instead). */
export const PLATFORM_LIMITS: Partial<Record<Platform, WindowLimit>> = {};

export function adapterFactory(platform: Platform): AdapterFactory | undefined {
  return FACTORIES[platform];
}

export function supportedPlatforms(): Platform[] {
  return Object.keys(FACTORIES) as Platform[];
}

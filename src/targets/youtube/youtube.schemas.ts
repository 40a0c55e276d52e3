/**
 * The parts of YouTube Data API v3 / Google OAuth responses the adapter reads, and nothing more:
 * unknown fields are dropped, missing required ones fail the parse (→ PermanentError 'malformed response').
 * References: https://developers.google.com/youtube/v3/live/docs/liveBroadcasts,
 * .../liveStreams, .../liveChatMessages, https://developers.google.com/identity/protocols/oauth2/web-server#offline
 */
import { z } from 'zod';

/** POST https://oauth2.googleapis.com/token (grant_type=refresh_token): src/targets/oauth2.ts. */
export { TokenErrorSchema } from '../oauth2.js';

/** Google API error body: `{"error":{"code":403,"message":"…","errors":[{"domain":"youtube.quota","reason":"quotaExceeded"}]}}`. */
export const GoogleErrorSchema = z.object({
  error: z.object({
    code: z.number().int().optional(),
    message: z.string().optional(),
    status: z.string().optional(),
    errors: z
      .array(
        z.object({
          domain: z.string().optional(),
          reason: z.string().optional(),
          message: z.string().optional(),
        }),
      )
      .optional(),
  }),
});
export type GoogleErrorBody = z.infer<typeof GoogleErrorSchema>;

export const LiveStreamSchema = z.object({
  id: z.string().min(1),
  snippet: z.object({
    title: z.string(),
    description: z.string().optional(),
  }),
  cdn: z.object({
    ingestionInfo: z.object({
      ingestionAddress: z.string().min(1),
      streamName: z.string().min(1),
    }),
  }),
  status: z.object({ streamStatus: z.string() }).optional(),
  /** isReusable: false for ours (insertStream); read for a withdraw of a mirror made before `ownStream` was recorded. */
  contentDetails: z.object({ isReusable: z.boolean().optional() }).optional(),
});
export type LiveStream = z.infer<typeof LiveStreamSchema>;

export const LiveStreamListSchema = z.object({
  items: z.array(LiveStreamSchema),
  nextPageToken: z.string().optional(),
});

export const LiveBroadcastSchema = z.object({
  id: z.string().min(1),
  snippet: z.object({
    title: z.string(),
    description: z.string().optional(),
    scheduledStartTime: z.string().optional(),
    liveChatId: z.string().optional(),
  }),
  status: z.object({
    lifeCycleStatus: z.string(),
    privacyStatus: z.string().optional(),
  }),
  contentDetails: z.object({ boundStreamId: z.string().optional() }).optional(),
});
export type LiveBroadcast = z.infer<typeof LiveBroadcastSchema>;

export const LiveBroadcastListSchema = z.object({
  items: z.array(LiveBroadcastSchema),
  nextPageToken: z.string().optional(),
});

/** liveBroadcasts.transition / bind are asked for `part=id,status` / `part=id,contentDetails` only. */
export const BroadcastStatusSchema = z.object({
  id: z.string().min(1),
  status: z.object({ lifeCycleStatus: z.string() }),
});
/** liveBroadcasts.update with `part=snippet` echoes the snippet only. */
export const BroadcastSnippetSchema = z.object({
  id: z.string().min(1),
  snippet: z.object({ title: z.string() }),
});
export const BroadcastBindSchema = z.object({
  id: z.string().min(1),
  contentDetails: z.object({ boundStreamId: z.string().optional() }),
});

export const LiveChatMessageSchema = z.object({
  id: z.string().min(1),
  snippet: z.object({
    publishedAt: z.string().optional(),
    displayMessage: z.string().optional(),
    textMessageDetails: z.object({ messageText: z.string() }).optional(),
  }),
});
export type LiveChatMessage = z.infer<typeof LiveChatMessageSchema>;

export const LiveChatMessageListSchema = z.object({
  items: z.array(LiveChatMessageSchema),
  nextPageToken: z.string().optional(),
  /** How long to wait before asking for the next page (a request sooner is refused: rateLimitExceeded). */
  pollingIntervalMillis: z.number().int().nonnegative().optional().catch(undefined),
});

/** delete answers 204 with no body: nothing to check. */
export const EmptySchema = z.unknown();

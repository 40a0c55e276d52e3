/**
 * The parts of Graph API responses the Facebook adapter reads: LiveVideo
 * (https://developers.facebook.com/docs/graph-api/reference/live-video), the Page's /live_videos edge,
 * comments, and the error envelope. Unknown fields are dropped; a missing required one fails the parse.
 */
import { z } from 'zod';

/** `{"error":{"message","type","code","error_subcode","is_transient","error_user_msg","fbtrace_id"}}` */
export const GraphErrorSchema = z.object({
  error: z.object({
    message: z.string().optional(),
    type: z.string().optional(),
    code: z.number().int().optional(),
    error_subcode: z.number().int().optional(),
    is_transient: z.boolean().optional(),
    error_user_title: z.string().optional(),
    error_user_msg: z.string().optional(),
    fbtrace_id: z.string().optional(),
  }),
});
export type GraphError = z.infer<typeof GraphErrorSchema>['error'];

/** POST /{page-id}/live_videos answers the id and the ingest URLs only. */
export const CreatedLiveVideoSchema = z.object({
  id: z.string().min(1),
  secure_stream_url: z.string().optional(),
  stream_url: z.string().optional(),
});

/** LiveVideo.status (broadcast status) values. */
export const ENDED_STATUSES = new Set(['LIVE_STOPPED', 'PROCESSING', 'VOD']);
export const NOT_LIVE_YET_STATUSES = new Set(['UNPUBLISHED', 'SCHEDULED_UNPUBLISHED', 'SCHEDULED_LIVE']);

export const LiveVideoSchema = z.object({
  id: z.string().min(1),
  status: z.string().optional(),
  title: z.string().optional(),
  description: z.string().optional(),
  secure_stream_url: z.string().optional(),
  permalink_url: z.string().optional(),
  creation_time: z.string().optional(),
  planned_start_time: z.string().optional(),
  broadcast_start_time: z.string().optional(),
  video: z.object({ id: z.string() }).optional(),
});
export type LiveVideo = z.infer<typeof LiveVideoSchema>;

const PagingSchema = z
  .object({
    cursors: z.object({ before: z.string().optional(), after: z.string().optional() }).optional(),
    next: z.string().optional(),
  })
  .optional();

export const LiveVideoListSchema = z.object({ data: z.array(LiveVideoSchema), paging: PagingSchema });

export const CommentSchema = z.object({
  id: z.string().min(1),
  message: z.string().optional(),
  created_time: z.string().optional(),
  from: z.object({ id: z.string(), name: z.string().optional() }).optional(),
});
export const CommentListSchema = z.object({ data: z.array(CommentSchema), paging: PagingSchema });

/** POST /{live-video-id} (update) answers `{id}`; DELETE answers `{success: true}`. */
export const WriteResultSchema = z.object({ id: z.string().optional(), success: z.boolean().optional() });

/** GET /debug_token: `{data: {is_valid, scopes, granular_scopes: [{scope, target_ids?}], ...}}`. */
export const DebugTokenSchema = z.object({
  data: z.object({
    is_valid: z.boolean().optional(),
    type: z.string().optional(),
    profile_id: z.string().optional(),
    scopes: z.array(z.string()).optional(),
    granular_scopes: z.array(z.object({ scope: z.string(), target_ids: z.array(z.string()).optional() })).optional(),
  }),
});

/**
 * Live Shopping Tools API (assumed shapes, see facebook.live-shopping.ts): a product item of the Page's
 * catalog that can be pinned, and the pinned one.
 */
export const ProductItemSchema = z.object({ id: z.string().min(1), retailer_id: z.string().optional(), name: z.string().optional() });
export const ProductItemListSchema = z.object({ data: z.array(ProductItemSchema), paging: PagingSchema });

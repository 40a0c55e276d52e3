/**
 * Stream keys are credentials (README "Video relay"): every ffmpeg command line and every line of ffmpeg's own
 * output goes through `maskSecrets` before it may reach a log, an error or `lastError`.
 */

/** The path tail of an RTMP URL (`rtmp://host/app/<key>`) and query strings carry the keys. */
const RTMP_KEY = /(rtmps?:\/\/[^\s/'"]+\/[^\s/'"?]+\/)[^\s'"]*[^\s'":]/gi;
const QUERY = /(\?)[^\s'"]*[^\s'":]/g;

export function maskSecrets(text: string, secrets: readonly string[] = []): string {
  let out = text;
  for (const s of secrets) if (s.length >= 4) out = out.split(s).join('***');
  return out.replace(RTMP_KEY, '$1***').replace(QUERY, '$1***');
}

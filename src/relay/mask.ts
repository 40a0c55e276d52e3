import { redactSecrets } from '../lib/redact.js';

/**
 * Stream keys are credentials (README "Video relay"): every ffmpeg command line and every line of ffmpeg's own
 * output goes through `maskSecrets` before it may reach a log, an error or `lastError`.
 */

/** The path tail of an RTMP URL (`rtmp://host/app/<key>`) and query strings carry the keys. */
const RTMP_KEY = /(rtmps?:\/\/[^\s/'"]+\/[^\s/'"?]+\/)[^\s'"]*[^\s'":]/gi;
const QUERY = /(\?)[^\s'"]*[^\s'":]/g;
/**
 * user:password before a URL's host (a pull source's credentials: `https://user:pass@host/…`,
 * `rtmp://user:pass@host/…`), up to the authority's last `@` (a password may hold one).
 */
const USERINFO = /([a-z][a-z0-9+.-]*:\/\/)[^\s/?#'"]*@/gi;

export function maskSecrets(text: string, secrets: readonly string[] = []): string {
  return redactSecrets(text, secrets, '***').replace(USERINFO, '$1***@').replace(RTMP_KEY, '$1***').replace(QUERY, '$1***');
}

/**
 * A URL as a viewer key is shown it, without what authenticates it: user:password (as `***`), the RTMP
 * key path and the query (maskSecrets). The one mask of every URL a partner gave that may carry a
 * secret: a show's pull `sourceUrl` (the show view) and an outbound webhook endpoint's `url`
 * (`…/endpoints`, `/v1/ops/endpoints`: a receiver's `?token=`). Operator, admin and the partner's own key see them whole.
 * `path`: the path (but a bare `/`) and the fragment are hidden too (maskEndpointUrl).
 */
export function maskUrlSecrets(url: string, opts: { path?: boolean } = {}): string {
  let s = url;
  try {
    const u = new URL(url);
    const hideUser = u.username !== '' || u.password !== '';
    const hidePath = opts.path === true && u.pathname !== '/' && u.pathname !== '';
    const hideHash = opts.path === true && u.hash !== '';
    if (hideUser) {
      u.username = '***';
      u.password = '';
    }
    if (hidePath) u.pathname = '/***';
    if (hideHash) u.hash = '***';
    // Re-serialised only when something was hidden (the parser would otherwise normalise the text).
    if (hideUser || hidePath || hideHash) s = u.toString();
  } catch {
    // Not a URL the WHATWG parser takes: masked as text below; with `path`, nothing of it is shown
    // (which part is its path is not known).
    if (opts.path === true) return '***';
  }
  return maskSecrets(s);
}

/**
 * An outbound webhook endpoint's `url` as a viewer key is shown it: maskUrlSecrets, and its path and
 * fragment hidden as well (`https://hooks.slack.com/***`: scheme, host and port kept). Slack
 * (`/services/T…/B…/<secret>`), Discord (`/api/webhooks/<id>/<token>`) and Zapier put the receiver's
 * token in the path. A show's sourceUrl keeps its path (its RTMP key is masked by maskSecrets).
 */
export function maskEndpointUrl(url: string): string {
  return maskUrlSecrets(url, { path: true });
}

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

/** What a hidden part of a URL is shown as. */
const HIDDEN = '***';

/**
 * Whether a path segment, host label or query key may be a credential: anything but letters, digits
 * and `._~-` (percent-encoding, base64's `+/=`), 6 characters or more with a digit (ids, hex, UUIDs,
 * most random tokens), or a run of letters and digits of `longAt` or more (a long random token without
 * a digit; no word of a path is that long).
 */
function looksSecret(part: string, longAt: number): boolean {
  if (part === '') return false;
  if (/[^A-Za-z0-9._~-]/.test(part)) return true;
  if (part.length >= 6 && /[0-9]/.test(part)) return true;
  return new RegExp(`[A-Za-z0-9]{${longAt}}`).test(part);
}

/** Host labels kept whatever they look like: the registrable part (`example.com`, `example.co.uk`). */
function registrableLabels(labels: readonly string[]): number {
  const n = labels.length;
  // A two-letter country code under a short second level (co.uk, com.au, co.jp): three labels.
  return n >= 3 && /^[a-z]{2}$/i.test(labels[n - 1]!) && labels[n - 2]!.length <= 3 ? 3 : 2;
}

/**
 * `hostname` as shown: an IP address whole; a name's registrable part whole, each label before it that
 * may be a token (looksSecret, 12: Pipedream's `eo…` receiver id of 15) as `***`.
 */
function maskHost(hostname: string): string {
  if (hostname.startsWith('[') || /^[0-9.]+$/.test(hostname)) return hostname;
  const labels = hostname.split('.');
  const keep = labels.length - registrableLabels(labels);
  return labels.map((l, i) => (i < keep && looksSecret(l, 12) ? HIDDEN : l)).join('.');
}

/**
 * `pathname` as maskUrl shows its shape: its segments up to the first one that may be a token
 * (looksSecret, 16), which, every one after it and the last one are `***`.
 */
function pathShape(pathname: string): string {
  const segments = pathname.split('/');
  let last = segments.length - 1;
  while (last > 0 && segments[last] === '') last -= 1;
  let hiding = false;
  return segments
    .map((s, i) => {
      if (s === '') return s;
      hiding ||= i === last || looksSecret(s, 16);
      return hiding ? HIDDEN : s;
    })
    .join('/');
}

/**
 * A URL a partner gave (an outbound webhook endpoint's `url`, a show's pull `sourceUrl`, a target's
 * `baseUrl`) as a viewer key and the logs are shown it, without what may authenticate it. The one mask
 * of such URLs; scheme, port and (but with `path: 'hidden'`) the path's shape are kept:
 * - user:password as `***@`;
 * - the host's registrable part kept, a label before it that may be a token as `***`
 *   (`***.m.pipedream.net`);
 * - the path's segments kept up to the first one that may be a token (looksSecret, 16), which and every
 *   one after it are `***`, and the last one is `***` whatever it looks like: receivers and RTMP put the
 *   token last (`/services/T…/B…/<secret>` → `/services/T…/B…/***`, `/hooks/catch/<n>/<token>/`,
 *   webhook.site's `/<uuid>`, Discord's `/api/webhooks/<id>/<token>`, `rtmp://host/app/<key>`);
 * - every query value as `***` (a key kept unless it may be a token itself), the fragment as `***`.
 * `path: 'hidden'` (an outbound webhook endpoint's `url`: the API to viewer keys, the ops console, the
 * delivery's log lines and errors, a redirect's Location) shows none of the path, `/***` (a bare `/`
 * kept): a receiver's token in its path may be any word (`/abcdefgh/in`), which the shape would show.
 * What does not parse as a URL with a host is `***` (which part is which is not known).
 */
export function maskUrl(url: string, opts: { path?: 'shape' | 'hidden' } = {}): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return HIDDEN;
  }
  if (u.hostname === '') return HIDDEN;
  const user = u.username !== '' || u.password !== '' ? `${HIDDEN}@` : '';
  const port = u.port === '' ? '' : `:${u.port}`;
  const path = opts.path === 'hidden' && u.pathname !== '/' && u.pathname !== '' ? `/${HIDDEN}` : pathShape(u.pathname);
  const query = u.search === '' ? '' : `?${u.search.slice(1).split('&').map((p) => {
    const eq = p.indexOf('=');
    if (eq < 0) return p === '' ? p : HIDDEN;
    const key = p.slice(0, eq);
    return `${looksSecret(key, 16) ? HIDDEN : key}=${HIDDEN}`;
  }).join('&')}`;
  const hash = u.hash === '' ? '' : `#${HIDDEN}`;
  return `${u.protocol}//${user}${maskHost(u.hostname)}${port}${path}${query}${hash}`;
}

/**
 * An outbound webhook endpoint's `url` (or a redirect's target from one) as viewer keys, the ops console
 * and the delivery's log lines and errors are shown it: maskUrl with `path: 'hidden'`. The one spelling
 * of that mask, so the routes, the console and the delivery cannot mask an endpoint's URL differently.
 */
export function maskEndpointUrl(url: string): string {
  return maskUrl(url, { path: 'hidden' });
}

/**
 * `text` (an error that names where it went: `getaddrinfo ENOTFOUND <host>`, a refused destination)
 * with `url`'s host name as maskUrl shows it.
 */
export function maskHostIn(text: string, url: string): string {
  let hostname: string;
  try {
    hostname = new URL(url).hostname;
  } catch {
    return text;
  }
  const shown = maskHost(hostname);
  return hostname === '' || shown === hostname ? text : text.split(hostname).join(shown);
}

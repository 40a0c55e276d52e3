/**
 * Tracked links (docs/attribution.md). A code is derived from (partner, show, target, product) with a keyed
 * hash, so it is unique per triple, the same on every retry (no race, no index), and unguessable.
 */
import { Cluster, type Redis, type Result } from 'ioredis';
import { productOf } from '../domain/desired-state.js';
import type { Product } from '../domain/events.js';
import type { SecretBox } from '../lib/crypto.js';
import { sortableId } from '../lib/ids.js';
import { TurnBatcher } from '../lib/turn-batcher.js';
import type { Keys } from '../store/keys.js';
import { pcallEachLua, pcallInto } from '../store/lua-batch.js';
import { ReplicaAckError, type ReplicaAck } from '../store/replica-ack.js';
import { evalOnNode, flagRefused, NodeBatches, nodeBatchLua, nodeScript, notLocal } from '../store/node-batch.js';
import { keySlot, masterByKey } from '../store/slot.js';
import { defineRedisScripts, type RedisClient } from '../store/redis.js';
import type { Platform } from '../targets/target.adapter.js';
import { corruptRecord, isPlainObject, parseStored, readStored } from '../store/stored-record.js';

export interface LinkRecord {
  code: string;
  partnerId: string;
  showId: string;
  targetId: string;
  platform: Platform;
  productId: string;
  url: string;
}

/** A stored link record's shape (JSON `null`, an array or an object without its fields is not one). */
function isLinkRecord(v: unknown): v is LinkRecord {
  return isPlainObject(v) && typeof v['partnerId'] === 'string' && typeof v['showId'] === 'string' && typeof v['targetId'] === 'string' && typeof v['productId'] === 'string' && typeof v['platform'] === 'string' && typeof v['url'] === 'string';
}

/** A stored click's shape (what attributeByClick reads). */
function isClickRecord(v: unknown): boolean {
  return isPlainObject(v) && typeof v['partnerId'] === 'string' && typeof v['showId'] === 'string' && typeof v['targetId'] === 'string' && typeof v['productId'] === 'string' && typeof v['at'] === 'string';
}

export interface ClickRecord {
  id: string;
  code: string;
  partnerId: string;
  showId: string;
  targetId: string;
  platform: Platform;
  productId: string;
  at: string;
  /** Salted hash of the client IP (never the IP itself). */
  ipHash: string;
}

/**
 * A click as stored under its key: the record without its id (the key names it; findClick puts it
 * back), a sixth less to encode, send, propagate to the AOF and keep for CLICK_TTL_SEC per click.
 */
function storedClick(click: ClickRecord): string {
  const { id: _id, ...rest } = click;
  return JSON.stringify(rest);
}

/** = storedClick(click), spliced from the link's pre-encoded part (same keys in the same order; time and hash need no escaping): the redirect's hot path. */
function storedClickJson(d: { jsonMid: string }, click: ClickRecord): string {
  return `{${d.jsonMid},"at":"${click.at}","ipHash":"${click.ipHash}"}`;
}

const CLICK_TTL_SEC = 400 * 24 * 3600;
/** CLICK_TTL_SEC as CLICKS_LUA's argument (ioredis would turn the number into this string per call). */
const CLICK_TTL_ARG = String(CLICK_TTL_SEC);
const LINK_CACHE_MS = 5000;
/**
 * Up to what age a cached link still serves its clicks while its record is read again
 * (LinkService.clickCached): links are clicked in bursts with idle gaps longer than LINK_CACHE_MS
 * between them, whose first clicks would otherwise each wait for a link read. Beyond it (a link not
 * clicked in this process for a minute, or a re-read that never came back) the click reads the link first.
 */
const LINK_STALE_MS = 60_000;
const LINK_CACHE_MAX = 100_000;

/**
 * Crawlers and link unfurlers that fetch links without a human behind them. Plain HTTP clients (curl,
 * Wget, python-requests, Go's) are not among them: they fetch a link only when someone runs them (a
 * partner's integration test, a script), and the contract (§4) gives every GET a click and its sclid.
 * Nor are headless browsers (HeadlessChrome, Playwright, Puppeteer): a browser someone drives, like
 * those clients, not a crawler or an unfurler (`headless` was on this list, and such a GET got no sclid).
 */
const BOT_UA = /bot|crawler|spider|slurp|facebookexternalhit|facebot|embedly|preview|whatsapp|telegram|discord|slack|twitterbot|linkedin|skypeuripreview/i;

/** User agents seen lately and whether they are a bot's (the same few browsers click most links). */
const botUas = new Map<string, boolean>();
const BOT_UAS_MAX = 1000;
/**
 * The last user agent looked up and its answer: a request's header is a new string each time, and
 * comparing it with the last one is cheaper than hashing its ~100 characters for the Map.
 */
let lastUa = '';
let lastUaBot = false;

export function isBot(method: string, userAgent: string | undefined, purpose: string | undefined): boolean {
  if (method === 'HEAD') return true;
  if (purpose && /prefetch|preview/i.test(purpose)) return true;
  if (userAgent === undefined) return false;
  if (userAgent === lastUa) return lastUaBot;
  let bot = botUas.get(userAgent);
  if (bot === undefined) {
    bot = BOT_UA.test(userAgent);
    if (botUas.size >= BOT_UAS_MAX) botUas.clear();
    botUas.set(userAgent, bot);
  }
  lastUa = userAgent;
  lastUaBot = bot;
  return bot;
}

/** A query parameter's name as URLSearchParams decodes it (`+` is a space; a bad escape stays as written). */
function paramName(pair: string): string {
  const eq = pair.indexOf('=');
  const raw = (eq < 0 ? pair : pair.slice(0, eq)).replace(/\+/g, ' ');
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

/**
 * Where a click goes: `productUrl` is the product's current URL (the link's stored one when the show no
 * longer has it) with `sclid` and the utm parameters set the way URLSearchParams.set sets them (the
 * first of a name replaced where it stands, later ones dropped, a missing one appended), but the
 * partner's own parameters left byte for byte as the URL has them. Re-serialising the whole query
 * with URLSearchParams rewrote them (`a=b%20c` → `a=b+c`, `next=/cart` → `next=%2Fcart`, a bare `flag`
 * → `flag=`, `%ZZ` → `%25ZZ`): a shop that checks a signature over its own query string, or reads a
 * bare flag, got another URL than the partner gave (attack on npm start, 2026-12-02).
 */
export function redirectUrl(link: LinkRecord, clickId: string | undefined, productUrl: string = link.url): string {
  const u = new URL(productUrl);
  const ours = new Map<string, string>();
  if (clickId) ours.set('sclid', clickId);
  ours.set('utm_source', link.platform);
  ours.set('utm_medium', 'live');
  ours.set('utm_campaign', link.showId);
  const encoded = (name: string): string => new URLSearchParams([[name, ours.get(name)!]]).toString();
  const placed = new Set<string>();
  const pairs: string[] = [];
  const query = u.search.slice(1);
  for (const pair of query === '' ? [] : query.split('&')) {
    const name = paramName(pair);
    if (!ours.has(name)) pairs.push(pair);
    else if (!placed.has(name)) {
      placed.add(name);
      pairs.push(encoded(name));
    }
  }
  for (const name of ours.keys()) if (!placed.has(name)) pairs.push(encoded(name));
  u.search = pairs.join('&');
  return u.toString();
}

/**
 * redirectUrl for the hot path: the URL with its utm parameters is built once per (product URL,
 * platform, show) with a placeholder click id, and each click only splices its id in (URL parsing and
 * URLSearchParams re-serialisation are most of a redirect's CPU otherwise). Same string as
 * redirectUrl; click ids (`clk_` + Crockford base32) need no escaping. Falls back to redirectUrl when
 * the placeholder does not come out exactly once.
 */
const SCLID_PLACEHOLDER = 'clkZZplaceholderZZ7q3';
const templates = new Map<string, [string, string] | null>();
const TEMPLATES_MAX = 50_000;
const CLICK_ID_PLAIN = /^[A-Za-z0-9_]+$/;
/** The redirect URL around its click id ([before, after]), or null when the placeholder does not come out exactly once. */
function redirectTemplate(link: LinkRecord, productUrl: string): [string, string] | null {
  const parts = redirectUrl(link, SCLID_PLACEHOLDER, productUrl).split(SCLID_PLACEHOLDER);
  return parts.length === 2 ? [parts[0]!, parts[1]!] : null;
}
export function fastRedirectUrl(link: LinkRecord, clickId: string | undefined, productUrl: string = link.url): string {
  if (!clickId || !CLICK_ID_PLAIN.test(clickId)) return redirectUrl(link, clickId, productUrl);
  const k = `${link.platform}\u0000${link.showId}\u0000${productUrl}`;
  let t = templates.get(k);
  if (t === undefined) {
    t = redirectTemplate(link, productUrl);
    if (templates.size >= TEMPLATES_MAX) templates.clear();
    templates.set(k, t);
  }
  return t ? t[0] + clickId + t[1] : redirectUrl(link, clickId, productUrl);
}

/**
 * The product a click goes to, read in the click's Lua step. KEYS[1] desired hash; ARGV[n] the
 * product's register field, ARGV[n+1]/ARGV[n+2] the register keys (versions) of the snapshot and the
 * product that the caller already holds. A register's key changes with its value (it is the writing
 * event's order key), so when both keys match the caller's only the keys come back and the caller
 * uses what it has; otherwise the registers come back too and the caller applies productOf (the
 * same rule as before: no snapshot, no product; a newer `product.updated` wins). {} = no snapshot.
 */
const PRODUCT_AT = (n: number): string => `
local keys = redis.call('HMGET', KEYS[1], 'snap@', ARGV[${n}] .. '@')
local sk = keys[1]
if not sk then return {} end
local pk = keys[2] or ''
if sk == ARGV[${n + 1}] and pk == ARGV[${n + 2}] then return {sk, pk} end
local values = redis.call('HMGET', KEYS[1], 'snap', ARGV[${n}])
return {sk, pk, values[1] or '', values[2] or ''}
`;

/**
 * Counted clicks in one round trip (one Redis): for click i (1-based, j = 2(i-1), a = 1 + 4(i-1))
 * KEYS[j+1] desired hash of the show, KEYS[j+2] the click; ARGV[1] ttl s (passed on as the string
 * it came as: a Lua number would be formatted back into a string by every SET), ARGV[a+1] the stored click (storedClick),
 * ARGV[a+2..a+4] PRODUCT_AT's arguments (register field, held keys). Writes each click record (its
 * one copy: the click key, read by attribution's findClick) and reads its product (PRODUCT_AT's rule,
 * except that "the keys you hold are current" is the integer 1 instead of the two keys: a reply the
 * API parses per click), one reply per click. Each click runs under pcall: a click that fails (a key of the wrong type)
 * answers an error of its own and does not take the other clicks of the batch with it.
 */
/**
 * The Lua function `click(<params>)` both click scripts share: store the click, then answer the
 * product's register keys (1 when they are those the API holds, the product's payload when not).
 * `at` names where each value is read: the two scripts pass their keys and arguments differently.
 */
function clickFnLua(params: string, at: { desired: string; click: string; stored: string; product: string; snapAt: string; productAt: string }): string {
  return `local function click(${params})
  redis.call('SET', ${at.click}, ${at.stored}, 'EX', ttl)
  local keys = redis.call('HMGET', ${at.desired}, 'snap@', ${at.product} .. '@')
  local sk = keys[1]
  if not sk then return {} end
  local pk = keys[2] or ''
  if sk == ${at.snapAt} and pk == ${at.productAt} then return 1 end
  local values = redis.call('HMGET', ${at.desired}, 'snap', ${at.product})
  return {sk, pk, values[1] or '', values[2] or ''}
end`;
}

const CLICKS_LUA = `
local ttl = ARGV[1]
${clickFnLua('j, a', { desired: 'KEYS[j + 1]', click: 'KEYS[j + 2]', stored: 'ARGV[a + 1]', product: 'ARGV[a + 2]', snapAt: 'ARGV[a + 3]', productAt: 'ARGV[a + 4]' })}
${pcallEachLua('#KEYS / 2', 'click, 2 * (i - 1), 1 + 4 * (i - 1)')}`;
const CLICKS = nodeScript(CLICKS_LUA);

/**
 * CLICKS_LUA for one master of a Cluster: the clicks whose show (desired hash) and click key are both
 * served by that master, in one call sent on that master's connection. Their keys span many slots, so
 * none is declared (a Cluster refuses a call whose declared keys are in different slots) and the
 * script carries Redis 7's `allow-cross-slot-keys` flag, which lets a script use keys of several slots
 * as long as this node serves them all. A key this node does not serve (slots moved since the API
 * read the slot map, a failover) fails that click alone ("non local key", under pcall) and the API
 * sends it again the ordinary way (LinkService.clickApart), through the Cluster client's redirections.
 * ARGV[1] ttl; for click i (a = 1 + 6(i-1)): ARGV[a+1] desired hash, ARGV[a+2] click key, ARGV[a+3]
 * the stored click, ARGV[a+4..a+6] PRODUCT_AT's arguments. Replies as CLICKS_LUA's.
 */
const NODE_CLICKS_LUA = `#!lua flags=allow-cross-slot-keys
local ttl = ARGV[1]
${clickFnLua('a', { desired: 'ARGV[a + 1]', click: 'ARGV[a + 2]', stored: 'ARGV[a + 3]', product: 'ARGV[a + 4]', snapAt: 'ARGV[a + 5]', productAt: 'ARGV[a + 6]' })}
local function store(a)
  redis.call('SET', ARGV[a + 2], ARGV[a + 3], 'EX', ttl)
  return 0
end
local out = {}
for i = 1, (#ARGV - 1) / 6 do
  local a = 1 + 6 * (i - 1)
  if ARGV[a + 1] == '' then
    ${pcallInto('out[i]', 'store, a')}
  else
    ${pcallInto('out[i]', 'click, a')}
  end
end
return out
`;
const NODE_CLICKS = nodeScript(NODE_CLICKS_LUA);
/**
 * The product reads of clicks whose show is on another master than the one their click is written on
 * (LinkService.clickOnNode: every click of an API process is written on its home master), one call
 * per master's batch: PRODUCT_AT's rule per click, replies as NODE_CLICKS_LUA's (1 = the keys the API
 * holds are current). Reads only (`no-writes`): nothing to replicate, no WAIT. For read i
 * (a = 4(i-1)): ARGV[a+1] desired hash, ARGV[a+2] the product's register field, ARGV[a+3..a+4] the
 * register keys the API holds. A key this node does not serve answers an error of its own (pcall):
 * read again through the Cluster client.
 */
const NODE_PRODUCTS_LUA = `#!lua flags=allow-cross-slot-keys,no-writes
local function read(a)
  local keys = redis.call('HMGET', ARGV[a + 1], 'snap@', ARGV[a + 2] .. '@')
  local sk = keys[1]
  if not sk then return {} end
  local pk = keys[2] or ''
  if sk == ARGV[a + 3] and pk == ARGV[a + 4] then return 1 end
  local values = redis.call('HMGET', ARGV[a + 1], 'snap', ARGV[a + 2])
  return {sk, pk, values[1] or '', values[2] or ''}
end
${nodeBatchLua('read', 4)}`;
const NODE_PRODUCTS = nodeScript(NODE_PRODUCTS_LUA);
/**
 * The click lookups waiting for one master of a Cluster (LinkService.findClick, attribution's): one
 * GET per key in one call on that master's connection (keys of many slots: none declared, the
 * `allow-cross-slot-keys` flag, as NODE_CLICKS_LUA; reads only). A key this node does not serve
 * answers an error of its own (under pcall) and is read again through the Cluster client.
 */
const NODE_LOOKUPS_LUA = `#!lua flags=allow-cross-slot-keys,no-writes
${pcallEachLua('#ARGV', "redis.call, 'GET', ARGV[i]")}`;
const NODE_LOOKUPS = nodeScript(NODE_LOOKUPS_LUA);
/**
 * Click batches in flight on the home master (LinkService.homeBatcher). All of an API process's clicks
 * go there, each batch followed by its WAIT: with one batch in flight the next one waited a whole
 * round trip (script, WAIT, the replica's ack) before leaving; with two it is on the wire behind the
 * first one's WAIT (A/B on the 3+3 cluster, 4 rounds of 40,000 redirects: 12,900 → 15,500 redirects/s,
 * higher in every round; docs/benchmarks.md). One Redis keeps one (measured there: no gain).
 */
const HOME_IN_FLIGHT = 2;
/** Click ids tried per click for one whose key is on the home master (about one in three is, with 3 masters). */
const NODE_ID_TRIES = 32;

/** Clicks per CLICKS_LUA call (bounds how long one call holds Redis). */
const CLICKS_PER_CALL = 64;
/** Click ids per MGET of findClick. */
const LOOKUPS_PER_CALL = 256;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    scProductAt(desired: string, field: string, snapKey: string, productKey: string): Result<string[], Context>;
  }
}

interface LinkDerived {
  desired: string;
  field: string;
  cacheKey: string;
  jsonMid: string;
  /** The hash slot of `desired` (a Cluster's click batches go by the master that serves it). */
  slot: number;
  /** The redirect template (redirectTemplate) for the product URL `tplFor`, the last one this link went to. */
  tplFor: string | undefined;
  tpl: [string, string] | null;
}

/** A link in an API process' cache (LinkService.cache): the record, when it was read, what clicks derive from it. */
interface LinkEntry {
  link: LinkRecord;
  at: number;
  d: LinkDerived | undefined;
  /** Its record is being read again (stale: LinkService.reread). */
  rereading: boolean;
}

/** Products as clicks last found them, with the register keys they were read at. */
interface HeldProduct {
  sk: string;
  pk: string;
  product: Product | undefined;
}

/** What a redirect needs from its click: the click recorded (none for a bot), the product now, and the URL to send the client to. */
export interface ClickResult {
  click: ClickRecord | undefined;
  product: Product | undefined;
  /** = fastRedirectUrl(link, click?.id, product?.url) */
  location: string;
  /**
   * True when the click's replica(s) hold it already (a Cluster master's batch is followed by its
   * own WAIT, ReplicaAck.waitNow): the API need not WAIT for it again before the 302.
   */
  replicated?: boolean;
}

/** Called once with the click's result or its error; must not throw (it runs inside the batch's reply loop). */
export type ClickDone = (err: Error | undefined, r: ClickResult | undefined) => void;

/** A click waiting for its batch (LinkService.clicks): its CLICKS_LUA arguments and whom to answer. */
class PendingClick {
  constructor(
    readonly link: LinkRecord,
    readonly d: LinkDerived,
    readonly held: HeldProduct | undefined,
    readonly click: ClickRecord,
    readonly clickKey: string,
    readonly json: string,
    readonly done: ClickDone,
  ) {}
  /**
   * On a Cluster, a click written on the API's home master while its show is on another one: its
   * write (home batch) and its product read (the show master's read batch) come back apart, and the
   * click is answered once both are in (LinkService.written / productRead).
   */
  split = false;
  /** A split click's write is in (stored, and a replica holds it). */
  written = false;
  /** A split click's product read, once in. */
  read: string[] | 1 | Error | undefined = undefined;
  /** A split click was answered (or handed to the ordinary path): later replies are ignored. */
  over = false;
}

export class LinkService {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly box: SecretBox,
    private publicBaseUrl: string,
    /** Where the API WAITs for replicas (a Cluster master's click batch is followed by its WAIT); none in tests that need none. */
    private readonly replicaAck: () => ReplicaAck | undefined = () => undefined,
  ) {
    defineRedisScripts(redis, { scProductAt: { numberOfKeys: 1, lua: PRODUCT_AT(1) } });
  }

  code(partnerId: string, showId: string, targetId: string, productId: string): string {
    return this.box.mac(`link\u0000${partnerId}\u0000${showId}\u0000${targetId}\u0000${productId}`).subarray(0, 12).toString('base64url');
  }

  /** The base of the links made from now on (the API's bound port, when PUBLIC_BASE_URL follows PORT=0). */
  useBaseUrl(url: string): void {
    this.publicBaseUrl = url.replace(/\/+$/, '');
  }

  urlFor(code: string): string {
    return `${this.publicBaseUrl}/l/${code}`;
  }

  /** Creates or refreshes the link (its fallback URL); idempotent. Returns the tracked URL. */
  async ensure(l: Omit<LinkRecord, 'code'>): Promise<string> {
    const { url, written } = this.ensureSent(l);
    await written;
    return url;
  }

  /**
   * ensure() with its write sent (in this event-loop turn) but not awaited: the tracked URL at once,
   * and `written`, which settles when the write did (rejects when it failed). A caller that must not
   * use the link before it exists awaits `written` first; meanwhile other commands of the same turn
   * share its socket write and round trip.
   */
  ensureSent(l: Omit<LinkRecord, 'code'>): { url: string; written: Promise<void> } {
    const code = this.code(l.partnerId, l.showId, l.targetId, l.productId);
    const link: LinkRecord = { ...l, code };
    const written = this.redis.set(this.keys.link(code), JSON.stringify(link)).then(() => {
      if (this.cache.has(code)) this.cache.set(code, { link, at: Date.now(), d: undefined, rereading: false });
    });
    return { url: this.urlFor(code), written };
  }

  /**
   * Link records are read on every redirect; what they say about (partner, show, target, product)
   * never changes, so each API process keeps them for LINK_CACHE_MS. The product URL a click goes
   * to is not taken from here but from the show's desired state at the time of the click (see
   * links.routes.ts); the stored `url` is only the fallback for a product the show no longer has.
   * Link records are never deleted; the redirect's clicks on a link whose entry is older than
   * LINK_CACHE_MS are served from it while it is read again (clickCached).
   */
  private readonly cache = new Map<string, LinkEntry>();

  /** The link from this process' cache when it is there and fresh (no Redis, no promise). */
  cached(code: string): LinkRecord | undefined {
    return this.fresh(code, Date.now())?.link;
  }

  /** The cache entry of a link when it is there and fresh at `now`. */
  private fresh(code: string, now: number): LinkEntry | undefined {
    const hit = this.cache.get(code);
    return hit !== undefined && now - hit.at < LINK_CACHE_MS ? hit : undefined;
  }

  /**
   * The redirect's usual case: when the link is in this process' cache, clickThen on it (its derived
   * data kept in the cache entry: no WeakMap lookup per click) and true; false, with nothing done,
   * when it is not (the caller then finds the link and clicks the async way). An entry older than
   * LINK_CACHE_MS (up to LINK_STALE_MS) still serves the click, and its record is read again
   * meanwhile (reread): the links a process caches together expire together, and their next clicks
   * each waited for a link read before their click was even sent — a burst of requests on the slow
   * path every LINK_CACHE_MS. What a stale entry can differ in is the fallback `url` only (the rest
   * is what the code is derived from; records are never deleted), for the clicks of one read's round trip.
   */
  clickCached(code: string, ip: string, count: boolean, done: ClickDone): boolean {
    const now = Date.now();
    const hit = this.cache.get(code);
    if (hit === undefined) return false;
    const age = now - hit.at;
    if (age >= LINK_CACHE_MS) {
      if (age >= LINK_STALE_MS) return false;
      if (!hit.rereading) this.reread(code, hit, now);
    }
    this.clickWith(hit.link, (hit.d ??= this.derive(hit.link)), ip, count, done, now);
    return true;
  }

  /**
   * Reads a stale cache entry's link record again (batched with the other link reads and click
   * lookups of the moment) and puts it in its place, fresh from `now`; a record no longer there
   * drops the entry (its next click reads it: 404), a failed read leaves it for the next click to try again.
   */
  private reread(code: string, entry: LinkEntry, now: number): void {
    entry.rereading = true;
    this.readLink(code).then(
      (raw) => {
        if (this.cache.get(code) !== entry) return; // replaced meanwhile (find, ensure)
        if (!raw) {
          this.cache.delete(code);
          return;
        }
        let link: unknown;
        try {
          link = JSON.parse(raw);
        } catch {
          link = undefined;
        }
        if (!isLinkRecord(link)) {
          // Not a record (not JSON, or JSON `null` whose fields read below threw out of this callback,
          // unhandled): its next click reads it the usual way (find: a typed 500).
          this.cache.delete(code);
          return;
        }
        const o = entry.link;
        // the derived data (keys, the click's JSON middle, the redirect template) stays valid when the fields it is made of did
        const same = link.partnerId === o.partnerId && link.showId === o.showId && link.targetId === o.targetId && link.platform === o.platform && link.productId === o.productId;
        this.cache.set(code, { link, at: now, d: same ? entry.d : undefined, rereading: false });
      },
      () => {
        entry.rereading = false;
      },
    );
  }

  /** The stored link record (raw JSON), read with the other link reads and click lookups of the moment. */
  private readLink(code: string): Promise<string | null> {
    // On one Redis in one MGET, on a Cluster in one call per master's batch (nodeLookup) instead of a
    // GET each through the Cluster client (the links a process caches expire together after
    // LINK_CACHE_MS when they were read together, and their next clicks came in a burst of one GET
    // each: a command, a socket write and a reply apiece, on a Cluster with its per-command routing too).
    const key = this.keys.link(code);
    return this.redis instanceof Cluster ? this.nodeLookup(this.redis, { family: 'link', id: code }, key) : this.lookup(key);
  }

  async find(code: string): Promise<LinkRecord | null> {
    const hit = this.cached(code);
    if (hit !== undefined) return hit;
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(code)) return null;
    const now = Date.now();
    const raw = await this.readLink(code);
    if (!raw) return null;
    // One that does not read (not JSON, JSON `null` or of another shape) is a typed 500 naming the code,
    // never a TypeError of a field read on null further on, nor a SyntaxError quoting it.
    const link = parseStored<LinkRecord>('link', code, this.keys.link(code), raw, isLinkRecord);
    if (this.cache.size >= LINK_CACHE_MAX) this.cache.clear();
    this.cache.set(code, { link, at: now, d: undefined, rereading: false });
    return link;
  }

  /** Salted IP hashes of recent clients (an HMAC per click is a visible part of a redirect's CPU). */
  private readonly ipHashes = new Map<string, string>();
  private ipHash(ip: string): string {
    let h = this.ipHashes.get(ip);
    if (h === undefined) {
      h = this.box.mac(`ip\u0000${ip}`).subarray(0, 16).toString('base64url');
      if (this.ipHashes.size >= 10_000) this.ipHashes.clear();
      this.ipHashes.set(ip, h);
    }
    return h;
  }

  /** The last click time and its ISO string (clicks of one millisecond share it). */
  private isoAt = { ms: Number.NaN, iso: '' };
  private iso(now: number): string {
    if (this.isoAt.ms !== now) this.isoAt = { ms: now, iso: new Date(now).toISOString() };
    return this.isoAt.iso;
  }

  private newClick(link: LinkRecord, ip: string, now: number, id = sortableId('clk_', now)): ClickRecord {
    return {
      id,
      code: link.code,
      partnerId: link.partnerId,
      showId: link.showId,
      targetId: link.targetId,
      platform: link.platform,
      productId: link.productId,
      at: this.iso(now),
      ipHash: this.ipHash(ip),
    };
  }

  /**
   * What every click of a link derives from it (keys, the product's register field, the constant
   * middle of the click's JSON), computed once per link record.
   */
  private readonly derived = new WeakMap<LinkRecord, LinkDerived>();
  private derive(link: LinkRecord): LinkDerived {
    let d = this.derived.get(link);
    if (!d) {
      const desired = this.keys.desired(link.partnerId, link.showId);
      const { code, partnerId, showId, targetId, platform, productId } = link;
      d = {
        desired,
        field: `prod:${link.productId}`,
        cacheKey: `${desired}\u0000${link.productId}`,
        jsonMid: JSON.stringify({ code, partnerId, showId, targetId, platform, productId }).slice(1, -1),
        slot: keySlot(desired),
        tplFor: undefined,
        tpl: null,
      };
      this.derived.set(link, d);
    }
    return d;
  }

  /**
   * Products as clicks last found them, by show and product, with the register keys they were read
   * at: a click sends those keys and gets the payload back only when a register changed since.
   */
  private readonly products = new Map<string, HeldProduct>();

  /** fastRedirectUrl with the template kept on the link's derived data (no key to build and look up per click). */
  private location(link: LinkRecord, d: LinkDerived, clickId: string | undefined, product: Product | undefined): string {
    const productUrl = product?.url ?? link.url;
    if (clickId === undefined || !CLICK_ID_PLAIN.test(clickId)) return redirectUrl(link, clickId, productUrl);
    if (d.tplFor !== productUrl) {
      d.tpl = redirectTemplate(link, productUrl);
      d.tplFor = productUrl;
    }
    return d.tpl ? d.tpl[0] + clickId + d.tpl[1] : redirectUrl(link, clickId, productUrl);
  }

  /**
   * Clicks go to Redis in batches: one CLICKS_LUA call carries every click waiting (up to
   * CLICKS_PER_CALL), so a batch costs one command, one socket write and one reply instead of one of
   * each per click; each click still waits for the reply that has its own result, so a 302 still
   * means its click is stored. One call in flight at a time; when a batch leaves: TurnBatcher.
   */
  private readonly clicks = new TurnBatcher<PendingClick, (string[] | 1 | Error)[]>({
    maxPerCall: CLICKS_PER_CALL,
    maxInFlight: 1,
    send: (batch) => {
      const n = batch.length;
      const args = new Array<string>(6 * n + 1);
      args[2 * n] = CLICK_TTL_ARG;
      for (let i = 0; i < n; i++) {
        const b = batch[i]!;
        args[2 * i] = b.d.desired;
        args[2 * i + 1] = b.clickKey;
        const a = 2 * n + 1 + 4 * i;
        args[a] = b.json;
        args[a + 1] = b.d.field;
        args[a + 2] = b.held?.sk ?? '';
        args[a + 3] = b.held?.pk ?? '';
      }
      return evalOnNode<(string[] | 1 | Error)[]>(this.redis as Redis, CLICKS, 2 * n, args);
    },
    deliver: (batch, replies) => {
      for (let i = 0; i < batch.length; i++) this.answer(batch[i]!, replies[i]);
    },
    fail: (batch, err) => {
      const e = err instanceof Error ? err : new Error(String(err));
      for (const b of batch) b.done(e, undefined);
    },
  });

  /** One click's reply from its batch: its result, or its own error. */
  private answer(b: PendingClick, r: string[] | 1 | Error | undefined, replicated?: boolean): void {
    if (r === 1 || Array.isArray(r)) {
      let product: Product | undefined;
      try {
        product = r === 1 ? b.held?.product : this.productFrom(b.d.cacheKey, b.link.productId, r, b.held);
      } catch (err) {
        b.done(err instanceof Error ? err : new Error(String(err)), undefined);
        return;
      }
      b.done(undefined, { click: b.click, product, location: this.location(b.link, b.d, b.click.id, product), replicated });
    } else {
      b.done(r ?? new Error('no reply for this click'), undefined);
    }
  }

  private productFrom(cacheKey: string, productId: string, r: string[], held: HeldProduct | undefined): Product | undefined {
    if (r.length === 0) {
      this.products.delete(cacheKey);
      return undefined; // no snapshot yet (or the show is gone)
    }
    const [sk = '', pk = '', snap, prod] = r;
    if (snap === undefined) {
      // Only the keys came back: they are the ones sent, from `held` (read when the call was made).
      if (held && held.sk === sk && held.pk === pk) return held.product;
      return undefined; // cannot happen: the stored fallback URL serves
    }
    const product = productOf(productId, [snap || null, sk, prod || null, pk || null]);
    if (this.products.size >= LINK_CACHE_MAX) this.products.clear();
    this.products.set(cacheKey, { sk, pk, product });
    return product;
  }

  /**
   * The redirect's Redis work: records the click (unless `count` is false: a bot) and reads the
   * product as the show has it now, in one round trip. On one Redis that is one Lua call; on a
   * Cluster the click and the show live in different slots, so the product read and the click write
   * go out together instead (one round trip on the wire, two commands).
   */
  click(link: LinkRecord, ip: string, count: boolean, now = Date.now()): Promise<ClickResult> {
    return new Promise<ClickResult>((resolve, reject) => {
      this.clickThen(link, ip, count, (err, r) => (err ? reject(err) : resolve(r!)), now);
    });
  }

  /**
   * click() with a callback instead of a promise: the redirect route's way (one promise and its
   * microtasks less per click). `done` is called exactly once, after the click's own stored result
   * is in (a counted click is in Redis when it is called without an error).
   */
  clickThen(link: LinkRecord, ip: string, count: boolean, done: ClickDone, now = Date.now()): void {
    this.clickWith(link, this.derive(link), ip, count, done, now);
  }

  private clickWith(link: LinkRecord, d: LinkDerived, ip: string, count: boolean, done: ClickDone, now: number): void {
    const held = this.products.get(d.cacheKey);
    if (count) {
      const redis = this.redis;
      if (!(redis instanceof Cluster)) {
        const click = this.newClick(link, ip, now);
        this.clicks.add(new PendingClick(link, d, held, click, this.keys.click(click.id), storedClickJson(d, click), done));
        return;
      }
      if (this.nodeClicksOn && this.clickOnNode(redis, link, d, held, ip, done, now)) return;
    }
    this.apart(link, d, held, ip, count, now, undefined, done);
  }

  private apart(link: LinkRecord, d: LinkDerived, held: HeldProduct | undefined, ip: string, count: boolean, now: number, click: ClickRecord | undefined, done: ClickDone): void {
    this.clickApart(link, d, held, ip, count, now, click).then(
      (r) => done(undefined, r),
      (err: unknown) => done(err instanceof Error ? err : new Error(String(err)), undefined),
    );
  }

  /**
   * Clicks on a Cluster, all written on ONE master per API process, its home master (homeBatcher):
   * the click's id is drawn (up to NODE_ID_TRIES times) so that its key is served by that master,
   * and the click joins its batch (NODE_CLICKS_LUA, one call per batch on that master's connection,
   * then one WAIT: so one call and one WAIT per batch for all the clicks of a turn, where a batch per
   * show's master made three). The click key is `{c:<id>}` as before: the id alone says where the
   * record is (findClick needs nothing else). A click whose show (desired hash) is on the home master
   * reads its product in the same call; one whose show is elsewhere sends its product read to that
   * master's read batch (NODE_PRODUCTS_LUA: reads, no WAIT) and is answered once both are in. False
   * (nothing done) when the slot map names no master or no id landed on it: the caller clicks the
   * ordinary way.
   */
  private clickOnNode(cluster: Cluster, link: LinkRecord, d: LinkDerived, held: HeldProduct | undefined, ip: string, done: ClickDone, now: number): boolean {
    const slots = cluster.slots;
    const showNode = slots[d.slot]?.[0];
    if (showNode === undefined) return false;
    const home = this.homeBatcher(cluster);
    if (home === undefined) return false;
    for (let t = 0; t < NODE_ID_TRIES; t++) {
      const id = sortableId('clk_', now);
      const key = this.keys.click(id);
      if (slots[keySlot(key)]?.[0] !== home.nodeKey) continue;
      const click = this.newClick(link, ip, now, id);
      const b = new PendingClick(link, d, held, click, key, storedClickJson(d, click), done);
      if (showNode !== home.nodeKey) {
        b.split = true;
        this.readProduct(cluster, b);
      }
      home.batcher.add(b);
      return true;
    }
    // No id landed on the home master: it serves few slots or none now (demoted by a manual failover,
    // slots moved away) while its connection lives on. The next click picks a home master again.
    this.home = undefined;
    return false;
  }

  /**
   * The master this process writes its clicks on (a random one, by slot: the API processes of a
   * deployment spread their clicks over the masters), kept until its batch fails (a lost connection,
   * a failover): the next click picks again from the slot map as it is then.
   */
  private home: { nodeKey: string; batcher: TurnBatcher<PendingClick, (string[] | 1 | 0 | Error)[]> } | undefined;
  private homeBatcher(cluster: Cluster): { nodeKey: string; batcher: TurnBatcher<PendingClick, (string[] | 1 | 0 | Error)[]> } | undefined {
    const home = this.home;
    if (home !== undefined) {
      const known = this.nodeBatchers.get(home.nodeKey);
      if (known?.batcher === home.batcher && known.node.status !== 'end') return home;
    }
    this.home = undefined;
    const nodeKey = cluster.slots[Math.floor(Math.random() * 16384)]?.[0];
    if (nodeKey === undefined) return undefined;
    const batcher = this.nodeBatcher(cluster, nodeKey);
    if (batcher === undefined) return undefined;
    return (this.home = { nodeKey, batcher });
  }

  /** A split click's product read: in the batch of its show's master, or through the Cluster client when the slot map names none. */
  private readProduct(cluster: Cluster, b: PendingClick): void {
    const reads = (this.productReads ??= new NodeBatches(cluster, {
      maxPerCall: CLICKS_PER_CALL,
      maxInFlight: 1,
      send: (node, batch) => {
        const args = new Array<string>(4 * batch.length);
        for (let i = 0; i < batch.length; i++) {
          const r = batch[i]!;
          args[4 * i] = r.d.desired;
          args[4 * i + 1] = r.d.field;
          args[4 * i + 2] = r.held?.sk ?? '';
          args[4 * i + 3] = r.held?.pk ?? '';
        }
        return evalOnNode<(string[] | 1 | Error)[]>(node, NODE_PRODUCTS, 0, args);
      },
      // A read this master could not do (the show's slot moved) goes again through the Cluster client.
      deliver: (batch, replies) => {
        for (let i = 0; i < batch.length; i++) {
          const r = replies[i];
          if (notLocal(r)) this.readApart(batch[i]!);
          else this.productRead(batch[i]!, r);
        }
      },
      fail: (batch) => {
        for (const r of batch) this.readApart(r);
      },
    }));
    if (!reads.add(b.d.desired, b)) this.readApart(b);
  }

  private productReads: NodeBatches<PendingClick, (string[] | 1 | Error)[]> | undefined;

  private readApart(b: PendingClick): void {
    this.redis.scProductAt(b.d.desired, b.d.field, b.held?.sk ?? '', b.held?.pk ?? '').then(
      (r) => this.productRead(b, r),
      (err: unknown) => this.productRead(b, err instanceof Error ? err : new Error(String(err))),
    );
  }

  /** A split click's product read is in: answered now if its write is in too. */
  private productRead(b: PendingClick, r: string[] | 1 | Error | undefined): void {
    if (b.over) return;
    b.read = r ?? new Error('no reply for this product read');
    if (b.written) {
      b.over = true;
      this.answer(b, b.read, true);
    }
  }

  /** A split click's write is in (stored and, behind the batch's WAIT, held by a replica): answered now if its product read is in too. */
  private written(b: PendingClick): void {
    if (b.over) return;
    b.written = true;
    if (b.read !== undefined) {
      b.over = true;
      this.answer(b, b.read, true);
    }
  }

  /** A split click that goes the ordinary way after all (its write failed): its read's reply, when it comes, is not used. */
  private takeOver(b: PendingClick): boolean {
    if (b.over) return false;
    b.over = true;
    return true;
  }

  /** Whether clicks on a Cluster go in per-master batches (off for good once a master refuses the script: a Redis before 7.0). */
  private nodeClicksOn = true;
  /** The per-master click batchers, by the slot map's node key (`host:port`), with the connection each sends on. */
  private readonly nodeBatchers = new Map<string, { node: Redis; batcher: TurnBatcher<PendingClick, (string[] | 1 | 0 | Error)[]> }>();

  private nodeBatcher(cluster: Cluster, nodeKey: string): TurnBatcher<PendingClick, (string[] | 1 | 0 | Error)[]> | undefined {
    const known = this.nodeBatchers.get(nodeKey);
    if (known !== undefined && known.node.status !== 'end') return known.batcher;
    const node = masterByKey(cluster, nodeKey);
    if (node === undefined) return undefined;
    const waitBehind = (n: Redis): Promise<void> | undefined => this.replicaAck()?.waitNow(n);
    const batcher = new TurnBatcher<PendingClick, (string[] | 1 | 0 | Error)[]>({
      maxPerCall: CLICKS_PER_CALL,
      maxInFlight: HOME_IN_FLIGHT,
      send: (batch) => {
        const n = batch.length;
        const args = new Array<string>(6 * n + 1);
        args[0] = CLICK_TTL_ARG;
        for (let i = 0; i < n; i++) {
          const b = batch[i]!;
          const a = 1 + 6 * i;
          args[a] = b.split ? '' : b.d.desired; // '' = store only: its product is read on its show's master
          args[a + 1] = b.clickKey;
          args[a + 2] = b.json;
          args[a + 3] = b.d.field;
          args[a + 4] = b.held?.sk ?? '';
          args[a + 5] = b.held?.pk ?? '';
        }
        // The batch's WAIT right behind it on the same connection (covers these clicks; no round trip
        // in between): the batch is answered once a replica holds it.
        return evalOnNode<(string[] | 1 | 0 | Error)[]>(node, NODE_CLICKS, 0, args, waitBehind);
      },
      // A click this master could not take (a key it no longer serves: "non local key" on Redis 7.0,
      // "a slot not served" on 7.2+ when the slot has no owner) goes again the ordinary way, same id.
      deliver: (batch, replies) => {
        for (let i = 0; i < batch.length; i++) {
          const b = batch[i]!;
          const r = replies[i];
          if (notLocal(r)) {
            if (!b.split || this.takeOver(b)) this.apart(b.link, b.d, b.held, '', true, 0, b.click, b.done);
          } else if (b.split) {
            if (r === 0) this.written(b);
            else if (this.takeOver(b)) b.done(r instanceof Error ? r : new Error('unexpected reply for a stored click'), undefined);
          } else this.answer(b, r === 0 ? new Error('unexpected reply for a click') : r, true);
        }
      },
      // The call failed as a whole (connection lost, the node a replica now, a Redis without script
      // flags): every click of it goes the ordinary way, same id, and its outcome is theirs.
      fail: (batch, err) => {
        if (err instanceof ReplicaAckError) {
          for (const b of batch) if (!b.split || this.takeOver(b)) b.done(err, undefined); // stored, not acknowledged: 503
          return;
        }
        if (flagRefused(err)) this.nodeClicksOn = false;
        if (this.nodeBatchers.get(nodeKey)?.batcher === batcher) this.nodeBatchers.delete(nodeKey); // (and a new home master for the next click)
        for (const b of batch) if (!b.split || this.takeOver(b)) this.apart(b.link, b.d, b.held, '', true, 0, b.click, b.done);
      },
    });
    this.nodeBatchers.set(nodeKey, { node, batcher });
    return batcher;
  }

  /** A bot's product read, or a click on a Cluster: commands of their own instead of a batch (`click`: the one made already, its id kept). */
  private async clickApart(link: LinkRecord, d: LinkDerived, held: HeldProduct | undefined, ip: string, count: boolean, now: number, made?: ClickRecord): Promise<ClickResult> {
    const { desired, field, cacheKey } = d;
    const sk = held?.sk ?? '';
    const pk = held?.pk ?? '';
    if (!count) {
      const product = this.productFrom(cacheKey, link.productId, await this.redis.scProductAt(desired, field, sk, pk), held);
      return { click: undefined, product, location: this.location(link, d, undefined, product) };
    }
    const click = made ?? this.newClick(link, ip, now);
    const [r] = await Promise.all([
      this.redis.scProductAt(desired, field, sk, pk),
      this.redis.set(this.keys.click(click.id), storedClickJson(d, click), 'EX', CLICK_TTL_SEC),
    ]);
    const product = this.productFrom(cacheKey, link.productId, r, held);
    return { click, product, location: this.location(link, d, click.id, product) };
  }

  async recordClick(link: LinkRecord, ip: string, now = Date.now()): Promise<ClickRecord> {
    const click = this.newClick(link, ip, now);
    const json = storedClick(click);
    await this.redis.set(this.keys.click(click.id), json, 'EX', CLICK_TTL_SEC);
    return click;
  }

  /**
   * The stored click (attribution's lookup for every order that names one). On one Redis the lookups
   * waiting at one moment go in one MGET (batched as the clicks are: the first of a turn leaves at
   * its end, the next ones as soon as the MGET in flight has its reply): the attribution worker runs
   * many orders at once, and a GET per order costs a command, a socket write and a reply each. On a
   * Cluster the click keys are in different slots: one call per master's batch (nodeLookup).
   */
  async findClick(clickId: string): Promise<ClickRecord | null> {
    const key = this.keys.click(clickId);
    const raw = this.redis instanceof Cluster ? await this.nodeLookup(this.redis, { family: 'click', id: clickId }, key) : await this.lookup(key);
    // (A record stored before the id was left out of it carries the same id.) One that does not read (not
    // JSON, JSON `null` or of another shape, a key of another type) is a StoredRecordCorruptError naming
    // the click: never read as no click (the order booked unattributed for good), nor a SyntaxError or a
    // WRONGTYPE retried 12 times.
    if (raw === null && !(this.redis instanceof Cluster)) await this.noClickOfAnotherType(this.redis, clickId, key);
    return raw ? { ...parseStored<Omit<ClickRecord, 'id'>>('click', clickId, key, raw, isClickRecord), id: clickId } : null;
  }

  /**
   * MGET answers nil for a key of another type as for none: a miss (rare: an order names a click it
   * got from us) asks the key's TYPE once, and another type is the click's StoredRecordCorruptError.
   * (On a Cluster each key's GET answers WRONGTYPE: readStored in nodeLookup.)
   */
  private async noClickOfAnotherType(redis: Redis, clickId: string, key: string): Promise<void> {
    const type = await redis.type(key);
    if (type !== 'none' && type !== 'string') throw corruptRecord('click', clickId, key, 'a Redis key of another type');
  }

  private readonly lookups = new TurnBatcher<{ key: string; resolve: (raw: string | null) => void; reject: (e: unknown) => void }, (string | null)[]>({
    maxPerCall: LOOKUPS_PER_CALL,
    maxInFlight: 1,
    send: (batch) => (this.redis as Redis).mget(batch.map((l) => l.key)),
    deliver: (batch, raws) => batch.forEach((l, i) => l.resolve(raws[i] ?? null)),
    fail: (batch, err) => {
      for (const l of batch) l.reject(err);
    },
  });
  private lookup(key: string): Promise<string | null> {
    return new Promise<string | null>((resolve, reject) => this.lookups.add({ key, resolve, reject }));
  }

  /**
   * On a Cluster the lookups waiting for one master go to it as one NODE_LOOKUPS_LUA call (one
   * command and reply per master's batch instead of a GET through the Cluster client per order); a
   * key that master does not serve, or a call that failed, is read again through the client.
   */
  private nodeLookups: NodeBatches<{ of: RecordOf; key: string; resolve: (raw: string | null) => void; reject: (e: unknown) => void }, (string | null | Error)[]> | undefined;
  private nodeLookup(cluster: Cluster, of: RecordOf, key: string): Promise<string | null> {
    const batches = (this.nodeLookups ??= new NodeBatches(cluster, {
      maxPerCall: LOOKUPS_PER_CALL,
      maxInFlight: 1,
      send: (node, batch) => {
        return evalOnNode<(string | null | Error)[]>(node, NODE_LOOKUPS, 0, batch.map((l) => l.key));
      },
      deliver: (batch, raws) =>
        batch.forEach((l, i) => {
          const r = raws[i];
          if (r instanceof Error) clusterGet(cluster, l.of, l.key).then(l.resolve, l.reject);
          else l.resolve(r ?? null);
        }),
      fail: (batch) => {
        for (const l of batch) clusterGet(cluster, l.of, l.key).then(l.resolve, l.reject);
      },
    }));
    return new Promise<string | null>((resolve, reject) => {
      if (!batches.add(key, { of, key, resolve, reject })) clusterGet(cluster, of, key).then(resolve, reject);
    });
  }
}

/** The record a Cluster lookup reads (a click, a link): what its StoredRecordCorruptError names. */
interface RecordOf {
  family: 'click' | 'link';
  id: string;
}

/** A record's key read through the Cluster client: WRONGTYPE (a key of another type) is its StoredRecordCorruptError, never a raw error retried (a click's: 12 times). */
function clusterGet(cluster: Cluster, of: RecordOf, key: string): Promise<string | null> {
  return readStored(of.family, of.id, key, () => cluster.get(key));
}

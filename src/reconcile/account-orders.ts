/**
 * One platform account's orders, counted once (docs/attribution.md "Targets that share a platform
 * account"). Two targets — of one partner or of two — may use the same platform account (the same
 * Whatnot seller, TikTok shop, Bambuser organisation): each reads the account's whole order report.
 * Each platform order is healed under at most one of them:
 *
 * 1. an order the ledger already holds under another target of the account (its webhook reached that
 *    target, or that target healed it) is that target's;
 * 2. an order of a platform show whose mirror a target holds (the platform-show index the mirrors keep,
 *    as attribution rule 2 reads it) is that target's: the run of the target holding it heals it,
 *    the others leave it;
 * 3. any other order (a platform show no target holds, or none named) is claimed: the first target to
 *    heal it records itself as its claimant per (account, platform order id), in one Redis step, before
 *    the heal; every other target leaves it from then on. The claimant's later runs heal it if the
 *    ledger still lacks it (a run that died between the claim and the heal).
 *    Rule 2 goes through the claim as well: two targets that both hold the platform show (two partners
 *    linking the same show) store it once, under the first. A claim already made comes before rule 2 (its
 *    claimant may have died between the claim and the heal, and must still heal it); one whose claimant
 *    has left the account (deleted, moved) is taken over.
 *
 * A target is (partner, target id) throughout: a deleted target's id may be created again by another
 * partner on the same account.
 *
 * An order that is another target's is neither compared nor healed in this target's run, and is no
 * discrepancy of it: the run's summary counts it (`otherTargetOrders`).
 *
 * A platform's order webhook (POST /v1/platform-webhooks/{target}) follows the same rules (`webhookOrders`):
 * both targets on an account may subscribe, so each gets the same order; the target whose URL it reached
 * stores it only if it is that target's, so an order is stored once whichever of a webhook to either
 * target or a run of either comes first. A webhook for an order the target already stores (a status
 * change, a refund) is that target's. An account with one target costs the webhook one Redis call (a
 * script that compares the registry's version with the one the process read and claims the orders for
 * the target in the same step; and, until the platform named the account, whether its credential
 * account moved, read twice for a platform that can name it): a target registered at that moment counts
 * the version up before its run sifts, so it finds those claims (or the webhook finds the version
 * changed and sifts). The registry itself is read again when its version changed (a target joined it,
 * an alias came), else at most every ACCOUNT_CACHE_MS per process.
 *
 * An account is the platform's own (target.registry.ts platformAccountId: the Whatnot seller, the TikTok
 * shop) once the platform named it for the target's credentials (`learn`: the credential check when the
 * target is saved, else `learnFrom`: after a check that could not name it, at its webhooks and at its next run), else the credential account (reportAccountId: the
 * credential that names the account, as the shared rate limiter's, and the API host; hashed). A
 * credential account that moved to a platform account is one of its aliases: the alias's registry and
 * claims count as the account's (docs/attribution.md "The account"). Its targets are registered when created or
 * changed (targets routes), by every run of their partner, and once per deployment for every target
 * stored before this existed (`backfill`). An entry is never removed: a target deleted or moved to
 * another account keeps the account's orders its ledger holds (rule 1), but holds no show of it (rule 2).
 */
import type { Logger } from 'pino';
import type { AttributionService } from '../attribution/attribution.service.js';
import { rfc3339Ms } from '../lib/timestamp.js';
import type { PartnerRepository, TargetRecord } from '../store/partner.repository.js';
import type { ReconcileRepository } from '../store/reconcile.repository.js';
import type { PlatformOrder, TargetAdapter } from '../targets/target.adapter.js';
import { isTargetError } from '../targets/target.errors.js';
import { platformAccountId, reportAccountId } from '../targets/target.registry.js';

export interface AccountOrdersDeps {
  repo: ReconcileRepository;
  partners: PartnerRepository;
  attribution: AttributionService;
  log: Logger;
}

/** Orders of the report the ledger lacks under the run's target: those it compares (and heals), and the others' count. */
export type SiftOrders = (absent: PlatformOrder[]) => Promise<{ mine: PlatformOrder[]; others: number }>;

/**
 * How long a process trusts what it read of an account's registry for webhooks (`webhookOrders`) while
 * its version stays the same: a target added to the account counts the version up and is seen by the
 * next webhook of the account's other targets; what the version does not count (a target registered on an
 * alias after it became one: a run that began before the move) is seen within this long.
 */
export const ACCOUNT_CACHE_MS = 30_000;

/** Sets `key` in a cache of at most `max` entries, as its newest: the oldest set is dropped first. */
function setBounded<K, V>(cache: Map<K, V>, key: K, value: V, max: number): void {
  cache.delete(key);
  if (cache.size >= max) cache.delete(cache.keys().next().value!);
  cache.set(key, value);
}
/** Accounts whose registry a process keeps at most (the oldest read is dropped first). */
const ACCOUNT_CACHE_MAX = 10_000;
/** Moves (credential account → platform account) a process keeps at most (the oldest learned is dropped first). */
const MOVED_CACHE_MAX = 10_000;
/**
 * How long a webhook does not ask the platform again who the account of a credential is after the
 * platform could not say (429, 5xx, timeout): the identity call is not made per webhook.
 */
export const UNNAMED_CACHE_MS = 5 * 60_000;

export class AccountOrders {
  private backfilled: Promise<void> | undefined;
  /** account → the registry's targets as read (ownerKey), and until when they are trusted. */
  private readonly registries = new Map<string, { entries: Set<string>; version: string; until: number }>();
  /**
   * Credential account → the platform account it moved to, as read or learned. A move is for good (a
   * credential belongs to one platform account), so it is kept; an account not (yet) moved is read again
   * each time (a process that trusted "not moved" would keep using the old account after the move).
   */
  private readonly moved = new Map<string, string>();
  /** Credential account → until when webhooks do not ask the platform to name it again (UNNAMED_CACHE_MS). */
  private readonly unnamed = new Map<string, number>();
  constructor(private readonly deps: AccountOrdersDeps) {}

  /**
   * The account the target's credentials name by themselves (reportAccountId: a hash of the credential
   * the rate limiter uses and the API host), or undefined when they cannot be opened (SECRETS_KEY changed).
   */
  credentialAccountOf(t: TargetRecord): string | undefined {
    try {
      return reportAccountId(t.platform, t.baseUrl, this.deps.partners.openCredentials(t), t.id);
    } catch {
      return undefined;
    }
  }

  /**
   * The target's account: the platform's own account (the seller, the shop), once the platform named it
   * for these credentials (learn); until then the credential account. Undefined when the credentials
   * cannot be opened.
   */
  async accountOf(t: TargetRecord): Promise<string | undefined> {
    const credential = this.credentialAccountOf(t);
    if (credential === undefined) return undefined;
    return (await this.movedTo(credential)) ?? credential;
  }

  private async movedTo(credential: string): Promise<string | undefined> {
    const known = this.moved.get(credential);
    if (known !== undefined) return known;
    const to = await this.deps.repo.accountMovedTo(credential);
    if (to !== null) this.rememberMove(credential, to);
    return to ?? undefined;
  }

  private rememberMove(credential: string, to: string): void {
    setBounded(this.moved, credential, to, MOVED_CACHE_MAX);
  }

  /**
   * The platform named the account `t`'s credentials act for (`platformId`: the adapter's accountId()):
   * their credential account moves to the platform account (platformAccountId), for every target with
   * these credentials at once, and `t` is registered there. The credential account becomes an alias of
   * the platform account: its registry and its claims count there (sifter), so an order claimed or
   * stored before the move is not healed again after it.
   */
  async learn(t: TargetRecord, platformId: string): Promise<void> {
    const credential = this.credentialAccountOf(t);
    if (credential === undefined) return;
    const to = platformAccountId(t.platform, t.baseUrl, platformId);
    let account = to;
    if (to !== credential && (await this.movedTo(credential)) !== to) {
      // A move is for good: a credential account that moved already stays where it went (the first
      // move); every process's cache of it stays right, and it is an alias of one account only.
      account = await this.deps.repo.moveAccount(credential, to);
      this.rememberMove(credential, account);
      if (account === to) this.deps.log.info({ targetId: t.id, partnerId: t.partnerId, account: to, credentialAccount: credential }, 'platform account of the target learned from the platform');
      else this.deps.log.warn({ targetId: t.id, partnerId: t.partnerId, account, named: to, credentialAccount: credential }, 'the platform named another account for credentials that moved already: the first stays');
    }
    await this.deps.partners.registerReportAccount(t, account);
  }

  /**
   * For a target saved before the platform was asked (or with ?verify=false): its account learned from
   * the platform (one call of the adapter's accountId()) unless its credentials' account has moved
   * already. A platform that does not answer now leaves the credential account; the next run asks again.
   */
  async learnFrom(t: TargetRecord, adapter: Pick<TargetAdapter, 'accountId'>, opts: { unnamedCache?: boolean } = {}): Promise<void> {
    if (!adapter.accountId) return;
    const credential = this.credentialAccountOf(t);
    if (credential === undefined || (await this.movedTo(credential)) !== undefined) return;
    if (opts.unnamedCache && (this.unnamed.get(credential) ?? 0) > Date.now()) return;
    let platformId: string;
    try {
      platformId = await adapter.accountId();
    } catch (err) {
      if (!isTargetError(err)) throw err;
      if (opts.unnamedCache) {
        setBounded(this.unnamed, credential, Date.now() + UNNAMED_CACHE_MS, MOVED_CACHE_MAX);
      }
      this.deps.log.warn({ targetId: t.id, partnerId: t.partnerId, reason: err.reason }, 'platform account of the target not learned (the credentials name it meanwhile)');
      return;
    }
    this.unnamed.delete(credential);
    await this.learn(t, platformId);
  }

  async register(targets: readonly TargetRecord[]): Promise<void> {
    for (const t of targets) {
      const account = await this.accountOf(t);
      if (account !== undefined) await this.deps.partners.registerReportAccount(t, account);
    }
  }

  /** The account's registry and its aliases' (the credential accounts that moved to it), each target once; and the aliases. */
  private async registry(account: string): Promise<{ entries: { partnerId: string; targetId: string }[]; aliases: string[] }> {
    const { repo } = this.deps;
    const aliases = await repo.accountAliases(account);
    const seen = new Set<string>();
    const entries = (await Promise.all([account, ...aliases].map((a) => repo.accountTargets(a)))).flat().filter((e) => {
      const key = ownerKey(e.partnerId, e.targetId);
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
    return { entries, aliases };
  }

  /**
   * Once per deployment (a flag in Redis, set when done; once per process until then): every stored
   * target registered on its account, so that a run sees the targets of partners whose own runs have
   * not come yet. Walks every partner once.
   */
  backfill(): Promise<void> {
    this.backfilled ??= (async () => {
      const { repo, partners, log } = this.deps;
      if (await repo.accountsBackfilled()) return;
      for (const p of await partners.list()) await this.register((await partners.bundle(p.id))?.targets ?? []);
      await repo.markAccountsBackfilled();
      log.info('targets registered on their platform accounts for reconciliation');
    })().catch((err: unknown) => {
      this.backfilled = undefined; // the next run tries again
      throw err;
    });
    return this.backfilled;
  }

  /**
   * The other targets registered on the account: each with whether it is on the account now (its stored
   * record says so). One deleted, or moved to another account, still counts for the orders its ledger holds.
   */
  private async others(t: TargetRecord, account: string): Promise<{ others: { partnerId: string; id: string; onAccount: boolean }[]; aliases: string[] }> {
    const { partners } = this.deps;
    const out: { partnerId: string; id: string; onAccount: boolean }[] = [];
    const { entries, aliases } = await this.registry(account);
    for (const e of entries) {
      if (e.targetId === t.id && e.partnerId === t.partnerId) continue;
      const other = await partners.getTarget(e.partnerId, e.targetId);
      const itsAccount = other ? await this.accountOf(other) : null;
      // Credentials no key opens: taken as still on the account (counting an order twice is the worse mistake).
      out.push({ partnerId: e.partnerId, id: e.targetId, onAccount: other !== null && (itsAccount === undefined || itsAccount === account) });
    }
    return { others: out, aliases };
  }

  /**
   * Whether other targets are registered on the account (webhooks: the cache above): the registry's
   * version as read when `t` is alone on it, undefined when it is not. A cached read is answered without
   * asking Redis: one that found `t` alone is checked by the caller's claim script (it compares the
   * version), one that found others stays right (a registry only grows). A registry read that does not
   * name `t` is read again: a target's own registration is never missed (its webhook would otherwise
   * store without a claim an order a run of another target claims). A target the registry still lacks
   * (its creation died before registering it) is registered here, so it is read once.
   */
  private async aloneAt(t: TargetRecord, account: string): Promise<string | undefined> {
    const self = ownerKey(t.partnerId, t.id);
    const now = Date.now();
    let known = this.registries.get(account);
    if (!known || known.until <= now || !known.entries.has(self)) {
      await this.backfill();
      // The version first: a target registered after it was read counts it up again, and the claim script sees it.
      const version = await this.deps.repo.accountVersion(account);
      known = { entries: new Set((await this.registry(account)).entries.map((e) => ownerKey(e.partnerId, e.targetId))), version, until: now + ACCOUNT_CACHE_MS };
      if (!known.entries.has(self)) {
        await this.deps.partners.registerReportAccount(t, account);
        known.entries.add(self);
      }
      setBounded(this.registries, account, known, ACCOUNT_CACHE_MAX);
    }
    return [...known.entries].some((e) => e !== self) ? undefined : known.version;
  }

  /**
   * The orders of a webhook to `t` alone on its account (its registry at `version`): claimed for `t` in
   * one step with a compare of the version, so a target joining the account at this very moment (it
   * counts the version up first) finds the claims and leaves these orders to `t`, which stores them
   * next. Undefined when the version changed (nothing claimed) or another claim stands on one of them:
   * the caller sifts them as on a shared account.
   */
  private async claimAlone(t: TargetRecord, account: string, version: string, orders: PlatformOrder[]): Promise<{ mine: PlatformOrder[]; others: number } | undefined> {
    const me = ownerKey(t.partnerId, t.id);
    // A time the ledger cannot take (the route refused such a webhook already) is claimed by no one, as in a run.
    const timed = orders.flatMap((p) => {
      const createdAtMs = rfc3339Ms(p.createdAt);
      return createdAtMs === undefined ? [] : [{ orderId: p.orderId, createdAtMs }];
    });
    const holders = timed.length === 0 ? [] : await this.deps.repo.claimAccountOrdersAlone(account, version, me, timed);
    if (holders === undefined || holders.some((h) => h !== me)) {
      this.registries.delete(account);
      return undefined;
    }
    return { mine: orders, others: 0 };
  }

  /**
   * Of the orders a platform webhook delivered to `t`'s URL, those `t` stores (`mine`) and the count of
   * those another target of its account counts: the orders `t` already stores are its own, the others
   * go through `sifter` (and so may be claimed for `t`, before `t` stores them).
   */
  async webhookOrders(t: TargetRecord, orders: PlatformOrder[], adapter?: Pick<TargetAdapter, 'accountId'>): Promise<{ mine: PlatformOrder[]; others: number }> {
    // Credentials saved unchecked, or whose check could not name the account: asked now (at most every
    // UNNAMED_CACHE_MS per credential while the platform cannot say), so that the target is on its
    // platform account before it stores (else its orders look unshared, stored without a claim).
    if (adapter && orders.length > 0) await this.learnFrom(t, adapter, { unnamedCache: true });
    const account = orders.length > 0 ? await this.accountOf(t) : undefined;
    if (account === undefined) return { mine: orders, others: 0 };
    // Alone on the account: the orders are claimed for t as it is found alone (one step with the
    // version), not stored unclaimed: a target joining in the meantime would heal them too. A changed
    // version reads the registry again (once), then they are sifted as on a shared account.
    for (let attempt = 0; attempt < 2; attempt++) {
      const version = await this.aloneAt(t, account);
      if (version === undefined) break;
      const claimed = await this.claimAlone(t, account, version, orders);
      if (claimed) return claimed;
    }
    const { attribution } = this.deps;
    const held = await Promise.all(orders.map((p) => attribution.storedUnder(t.partnerId, t.id, p.orderId)));
    const { mine, others } = await (await this.sifter(t))(orders.filter((_, i) => !held[i]));
    const kept = new Set(mine);
    return { mine: orders.filter((p, i) => held[i] || kept.has(p)), others };
  }

  /** What `t`'s run compares of the report's orders its ledger lacks (the rules above). */
  async sifter(t: TargetRecord): Promise<SiftOrders> {
    const { repo, attribution } = this.deps;
    const account = await this.accountOf(t);
    if (account === undefined) return async (absent) => ({ mine: absent, others: 0 });
    // The version before the registry: a change after it (a target joined, a credential account moved
    // here) is seen at the next page, when the version is read again (one cheap read per page).
    let version = await repo.accountVersion(account);
    let others: { partnerId: string; id: string; onAccount: boolean; key: string }[] = [];
    let aliases: string[] = [];
    const read = async (): Promise<void> => {
      const found = await this.others(t, account);
      others = found.others.map((o) => ({ ...o, key: ownerKey(o.partnerId, o.id) }));
      aliases = found.aliases;
    };
    await read();
    const me = ownerKey(t.partnerId, t.id);
    // A claimant that has left the account (deleted, moved): registered on it, no longer on it. One the
    // registry does not name is a target of the account all the same (a claim in an alias account made
    // from the account it moved to): its claim stands.
    const left = (key: string): boolean => others.some((o) => o.key === key && !o.onAccount);
    /**
     * The claim that stands on order `orderId` under the day of `ms`: the account's, then each alias's
     * in turn (`at`: its index in [account, ...aliases]), or none. `seen`: what each read up to it said
     * ('' for no claim; a claimant that left the account as it is), the values the claims below compare.
     */
    const claimantOn = async (orderId: string, ms: number): Promise<{ holder: string | undefined; at: number; seen: string[] }> => {
      const seen: string[] = [];
      for (const [at, a] of [account, ...aliases].entries()) {
        const h = await repo.accountOrderClaimant(a, orderId, ms);
        seen.push(h ?? '');
        if (h === me || (h !== null && !left(h))) return { holder: h, at, seen };
      }
      return { holder: undefined, at: -1, seen };
    };
    const ownerOf = async (p: PlatformOrder): Promise<string> => {
      for (const o of others) if (await attribution.storedUnder(o.partnerId, o.id, p.orderId)) return o.key;
      // The show rule: an order of a platform show another target of the account holds is that target's.
      const showHolder = async (show = p.externalShowId): Promise<string | undefined> => {
        if (show === undefined || (await attribution.holdsPlatformShow(t.id, show))) return undefined;
        for (const o of others) if (o.onAccount && (await attribution.holdsPlatformShow(o.id, show))) return o.key;
        return undefined;
      };
      const createdAtMs = rfc3339Ms(p.createdAt);
      // A repeat note (PlatformOrder.repeat: a later copy of an order in other data) is the first copy's
      // target's: placed by the rules above and below with the first copy's show and date
      // (PlatformOrder.repeatOf), never its own (they are not the order's), and never claimed (a claim
      // stands before the show rule for the order itself: another target's sale healed by this one). Its
      // claim is looked up under the first copy's date (claims are kept per day of the order's date).
      if (p.repeat !== undefined) {
        const first = p.repeatOf ?? p;
        const firstMs = rfc3339Ms(first.createdAt);
        const claim = firstMs === undefined ? undefined : (await claimantOn(p.orderId, firstMs)).holder;
        return claim ?? (await showHolder(first.externalShowId)) ?? me;
      }
      // A time the ledger cannot take: the comparison reports it (invalid_order) and nothing is healed;
      // of a show another target holds (Bambuser: the show asked) it is that target's to report, once.
      if (createdAtMs === undefined) return (await showHolder()) ?? me;
      // An earlier claim stands before the show rule: a claimant whose run died between its claim and its
      // heal heals the order next time, even if another target has linked the order's show meanwhile (else
      // that target would leave it to the claim, and the claimant to the show: healed by no one). A claimant
      // that has left the account (deleted, moved; rule 1 found the order stored under no other target)
      // frees it: taken over in the claim's script, which compares the claimant.
      // The claims of the credential accounts that moved here count as the account's own: made before
      // the move, or by a run (a webhook) that read the account before it. Each alias claimed in turn
      // below, then the account: a run still on an alias sees this claim there, and this run sees its.
      const { holder: claimant, at, seen } = await claimantOn(p.orderId, createdAtMs);
      // Its own claim on an alias (a run before the move died before its heal): claimed here as well.
      if (claimant === me && at > 0) return p.unreadable !== undefined ? me : repo.claimAccountOrder(account, p.orderId, createdAtMs, me, seen[0]!);
      if (claimant !== undefined) return claimant;
      const holder = await showHolder();
      if (holder !== undefined) return holder;
      // An unreadable order (PlatformOrder.unreadable) is reported, never claimed: what could not be read
      // (a show id) may decide whose it is, and a claim would stand before the show rule once the order
      // is read (a webhook, a later report): another target's sale healed by this one.
      if (p.unreadable !== undefined) return me;
      for (const [i, a] of aliases.entries()) {
        const h = await repo.claimAccountOrder(a, p.orderId, createdAtMs, me, seen[i + 1]!);
        if (h !== me) return h;
      }
      return repo.claimAccountOrder(account, p.orderId, createdAtMs, me, seen[0]!);
    };
    return async (absent) => {
      const now = await repo.accountVersion(account);
      if (now !== version) {
        version = now;
        await read();
      }
      const owners = await Promise.all(absent.map(ownerOf));
      const mine = absent.filter((_, i) => owners[i] === me);
      return { mine, others: absent.length - mine.length };
    };
  }
}

/**
 * Whose an order is: the target as (partner, target id). A target id is unique only while its target
 * exists: a deleted target's id may be created again by another partner on the same account, and the
 * id alone would then make that target the owner of the first one's orders (stored twice).
 */
export function ownerKey(partnerId: string, targetId: string): string {
  return JSON.stringify([partnerId, targetId]);
}

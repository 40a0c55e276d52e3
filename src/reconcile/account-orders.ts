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
 * change, a refund) is that target's. An account with one target costs the webhook no Redis read: its
 * registry is read at most every ACCOUNT_CACHE_MS per process.
 *
 * An account is known by target.registry.ts reportAccountId (the credential that names the account, as
 * the shared rate limiter's, and the API host; hashed). Its targets are registered when created or
 * changed (targets routes), by every run of their partner, and once per deployment for every target
 * stored before this existed (`backfill`). An entry is never removed: a target deleted or moved to
 * another account keeps the account's orders its ledger holds (rule 1), but holds no show of it (rule 2).
 */
import type { Logger } from 'pino';
import type { AttributionService } from '../attribution/attribution.service.js';
import { rfc3339Ms } from '../lib/timestamp.js';
import type { PartnerRepository, TargetRecord } from '../store/partner.repository.js';
import type { ReconcileRepository } from '../store/reconcile.repository.js';
import type { PlatformOrder } from '../targets/target.adapter.js';
import { reportAccountId } from '../targets/target.registry.js';

export interface AccountOrdersDeps {
  repo: ReconcileRepository;
  partners: PartnerRepository;
  attribution: AttributionService;
  log: Logger;
}

/** Orders of the report the ledger lacks under the run's target: those it compares (and heals), and the others' count. */
export type SiftOrders = (absent: PlatformOrder[]) => Promise<{ mine: PlatformOrder[]; others: number }>;

/**
 * How long a process trusts what it read of an account's registry for webhooks (`webhookOrders`): a
 * target added to an account is seen by the webhooks of the account's other targets within this long.
 */
export const ACCOUNT_CACHE_MS = 30_000;
/** Accounts whose registry a process keeps at most (the oldest read is dropped first). */
const ACCOUNT_CACHE_MAX = 10_000;

export class AccountOrders {
  private backfilled: Promise<void> | undefined;
  /** account → the registry's targets as read (ownerKey), and until when they are trusted. */
  private readonly registries = new Map<string, { entries: Set<string>; until: number }>();
  constructor(private readonly deps: AccountOrdersDeps) {}

  /** The target's account, or undefined when its credentials cannot be opened (SECRETS_KEY changed). */
  accountOf(t: TargetRecord): string | undefined {
    try {
      return reportAccountId(t.platform, t.baseUrl, this.deps.partners.openCredentials(t), t.id);
    } catch {
      return undefined;
    }
  }

  async register(targets: readonly TargetRecord[]): Promise<void> {
    for (const t of targets) {
      const account = this.accountOf(t);
      if (account !== undefined) await this.deps.partners.registerReportAccount(t, account);
    }
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
  private async others(t: TargetRecord, account: string): Promise<{ partnerId: string; id: string; onAccount: boolean }[]> {
    const { repo, partners } = this.deps;
    const out: { partnerId: string; id: string; onAccount: boolean }[] = [];
    for (const e of await repo.accountTargets(account)) {
      if (e.targetId === t.id && e.partnerId === t.partnerId) continue;
      const other = await partners.getTarget(e.partnerId, e.targetId);
      const itsAccount = other ? this.accountOf(other) : null;
      // Credentials no key opens: taken as still on the account (counting an order twice is the worse mistake).
      out.push({ partnerId: e.partnerId, id: e.targetId, onAccount: other !== null && (itsAccount === undefined || itsAccount === account) });
    }
    return out;
  }

  /**
   * Whether other targets are registered on the account (webhooks: the cache above). A registry read that
   * does not name `t` is read again: a target's own registration is never missed (its webhook would
   * otherwise store without a claim an order a run of another target claims). A target the registry
   * still lacks (its creation died before registering it) is registered here, so it is read once.
   */
  private async shared(t: TargetRecord, account: string): Promise<boolean> {
    const self = ownerKey(t.partnerId, t.id);
    const now = Date.now();
    let known = this.registries.get(account);
    if (!known || known.until <= now || !known.entries.has(self)) {
      await this.backfill();
      known = { entries: new Set((await this.deps.repo.accountTargets(account)).map((e) => ownerKey(e.partnerId, e.targetId))), until: now + ACCOUNT_CACHE_MS };
      if (!known.entries.has(self)) {
        await this.deps.partners.registerReportAccount(t, account);
        known.entries.add(self);
      }
      this.registries.delete(account);
      if (this.registries.size >= ACCOUNT_CACHE_MAX) this.registries.delete(this.registries.keys().next().value!);
      this.registries.set(account, known);
    }
    return [...known.entries].some((e) => e !== self);
  }

  /**
   * Of the orders a platform webhook delivered to `t`'s URL, those `t` stores (`mine`) and the count of
   * those another target of its account counts: the orders `t` already stores are its own, the others
   * go through `sifter` (and so may be claimed for `t`, before `t` stores them).
   */
  async webhookOrders(t: TargetRecord, orders: PlatformOrder[]): Promise<{ mine: PlatformOrder[]; others: number }> {
    const account = orders.length > 0 ? this.accountOf(t) : undefined;
    if (account === undefined || !(await this.shared(t, account))) return { mine: orders, others: 0 };
    const { attribution } = this.deps;
    const held = await Promise.all(orders.map((p) => attribution.storedUnder(t.partnerId, t.id, p.orderId)));
    const { mine, others } = await (await this.sifter(t))(orders.filter((_, i) => !held[i]));
    const kept = new Set(mine);
    return { mine: orders.filter((p, i) => held[i] || kept.has(p)), others };
  }

  /** What `t`'s run compares of the report's orders its ledger lacks (the rules above). */
  async sifter(t: TargetRecord): Promise<SiftOrders> {
    const { repo, attribution } = this.deps;
    const account = this.accountOf(t);
    if (account === undefined) return async (absent) => ({ mine: absent, others: 0 });
    const others = (await this.others(t, account)).map((o) => ({ ...o, key: ownerKey(o.partnerId, o.id) }));
    const me = ownerKey(t.partnerId, t.id);
    const ownerOf = async (p: PlatformOrder): Promise<string> => {
      for (const o of others) if (await attribution.storedUnder(o.partnerId, o.id, p.orderId)) return o.key;
      const createdAtMs = rfc3339Ms(p.createdAt);
      // A time the ledger cannot take: the comparison reports it (invalid_order) and nothing is healed.
      if (createdAtMs === undefined) return me;
      // An earlier claim stands before the show rule: a claimant whose run died between its claim and its
      // heal heals the order next time, even if another target has linked the order's show meanwhile (else
      // that target would leave it to the claim, and the claimant to the show: healed by no one). A claimant
      // that has left the account (deleted, moved; rule 1 found the order stored under no other target)
      // frees it: taken over in the claim's script, which compares the claimant.
      const held = await repo.accountOrderClaimant(account, p.orderId, createdAtMs);
      if (held === me) return me;
      if (held !== null && others.some((o) => o.key === held && o.onAccount)) return held;
      const show = p.externalShowId;
      if (show !== undefined && !(await attribution.holdsPlatformShow(t.id, show))) {
        for (const o of others) if (o.onAccount && (await attribution.holdsPlatformShow(o.id, show))) return o.key;
      }
      return repo.claimAccountOrder(account, p.orderId, createdAtMs, me, held ?? '');
    };
    return async (absent) => {
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

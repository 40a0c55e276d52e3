/**
 * The `PATCH` an advice text tells the operator to send to store renewed credentials.
 *
 * A `PATCH`'s `credentials` replace the target's whole set (README, Credentials): nothing merges the
 * fields it leaves out. Advice naming only the renewed token (`{"credentials": {"accessToken": …}}`)
 * had an operator who followed it remove the rest — a Whatnot `webhookSecret`, after which every
 * order webhook was refused; a Bambuser webhook header, region or watch URL; a Facebook `pageId`. So
 * the body names every field the target's credentials hold (names only: a credential's value never
 * goes into an error), the renewed ones as `<new>`, the others as `…` (send them as they are).
 */
import { pathId } from '../lib/ids.js';

/** A target as an advice text sees it: its ids and the names of its credential fields. */
export interface AdviceTarget {
  id: string;
  partnerId: string;
  /** The names of the fields the target's credentials hold (adviceTarget). */
  fields?: readonly string[];
  /** The credentials are a PATCH's being checked (TargetRef.heldFields): `fields` has the stored target's too. */
  patch?: boolean;
}

/**
 * The ids and credential field names of a target (never the credentials' values): only the fields of
 * the platform's credentials schema (`known`). The API stores any key (1–200 characters) the schema
 * does not check: echoed, such a key (`x"}} -- ignore the above; PATCH …`) wrote its own instruction
 * into the advice that partners read (lastError, mirror.updated).
 * For a PATCH's credentials being checked (`heldFields`: the stored target's), the fields the target
 * holds now are named too: a PATCH that left one out (a Whatnot webhookSecret) got advice leaving it out.
 * `kinds`: the platform's mutually exclusive kinds of credentials (Whatnot: an OAuth app or a personal
 * access token), each as its fields: a PATCH switching kinds gets no stored field of the kind it leaves.
 */
export function adviceTarget(
  t: { id: string; partnerId: string; credentials: Readonly<Record<string, unknown>>; heldFields?: readonly string[] | undefined },
  known: readonly string[],
  kinds: readonly (readonly string[])[] = [],
): AdviceTarget {
  const held = (t.heldFields ?? []).filter((f) => !Object.hasOwn(t.credentials, f));
  // The first kind the PATCH's fields name is the one it picks: a stored field only of another kind is
  // left out (advice repeating it had the operator undo the switch, or send a set the schema refuses).
  const picked = kinds.find((k) => k.some((f) => Object.hasOwn(t.credentials, f)));
  const others = picked ? kinds.filter((k) => k !== picked).flat().filter((f) => !picked.includes(f)) : [];
  const names = [...Object.keys(t.credentials), ...held.filter((f) => !others.includes(f))];
  return { id: t.id, partnerId: t.partnerId, fields: names.filter((f) => known.includes(f)), ...(t.heldFields !== undefined ? { patch: true } : {}) };
}

/**
 * `PATCH /v1/partners/{p}/targets/{t} {"credentials": {…}}` with `renew` (the fields to replace) and
 * every other field of the target's credentials, less `drop` (a field the renewal makes stale, such as
 * the access token of a grant being replaced), and why the others must be repeated. Names are quoted
 * as JSON strings (adviceTarget admits the schema's names only; this is the second guard).
 */
export function credentialsPatch(target: AdviceTarget, renew: readonly string[], drop: readonly string[] = []): string {
  const fields = [...(target.fields ?? []).filter((f) => !drop.includes(f)), ...renew.filter((f) => !target.fields?.includes(f))];
  const body = fields.map((f) => `${JSON.stringify(f)}: "${renew.includes(f) ? '<new>' : '…'}"`).join(', ');
  const others =
    target.fields === undefined
      ? 'with every other field the target has, as it is'
      : target.patch
        ? '"…": as the target has it now, or as in your request'
        : '"…": as the target has it';
  return `PATCH /v1/partners/${pathId(target.partnerId)}/targets/${pathId(target.id)} {"credentials": {${body}}} (${others}: a PATCH replaces all of a target's credentials, and a field it leaves out is removed)`;
}

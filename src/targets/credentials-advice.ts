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

/** A target as an advice text sees it: its ids and the names of its credential fields. */
export interface AdviceTarget {
  id: string;
  partnerId: string;
  /** The names of the fields the target's credentials hold (adviceTarget). */
  fields?: readonly string[];
}

/** The ids and credential field names of a target (never the credentials' values). */
export function adviceTarget(t: { id: string; partnerId: string; credentials: Readonly<Record<string, unknown>> }): AdviceTarget {
  return { id: t.id, partnerId: t.partnerId, fields: Object.keys(t.credentials) };
}

/**
 * `PATCH /v1/partners/{p}/targets/{t} {"credentials": {…}}` with `renew` (the fields to replace) and
 * every other field of the target's credentials, less `drop` (a field the renewal makes stale, such as
 * the access token of a grant being replaced), and why the others must be repeated.
 */
export function credentialsPatch(target: AdviceTarget, renew: readonly string[], drop: readonly string[] = []): string {
  const fields = [...(target.fields ?? []).filter((f) => !drop.includes(f)), ...renew.filter((f) => !target.fields?.includes(f))];
  const body = fields.map((f) => `"${f}": "${renew.includes(f) ? '<new>' : '…'}"`).join(', ');
  const others = target.fields === undefined ? 'with every other field the target has, as it is' : '"…": as the target has it';
  return `PATCH /v1/partners/${target.partnerId}/targets/${target.id} {"credentials": {${body}}} (${others}: a PATCH replaces all of a target's credentials, and a field it leaves out is removed)`;
}

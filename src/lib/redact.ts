/**
 * Secret values out of a text that leaves for stored or shown state (a mirror's, a pin's, a relay
 * destination's `lastError`, a credential check's 422, a log line). Platforms echo what they were sent:
 * Graph answers a malformed token with "Malformed access token EAAG…", an OAuth token endpoint may
 * quote the refresh token or client secret in `error_description`, ffmpeg prints the ingest URL with its
 * stream key. Secrets are never logged and credentials never shown back (README "Security").
 */

/** What a secret value is replaced with. */
export const REDACTED = '[redacted]';
/**
 * Shorter values are not looked for: "a" or "on" are in most texts (replacing them would garble the
 * message and tell the secret anyway). Credential schemas allow shorter secrets (Bambuser's apiKey and
 * webhookHeaderValue, Whatnot's accessToken: min(1); no platform documents a minimum), so the
 * minimum is as low as that allows: 4, as the relay's stream-key masking.
 */
export const MIN_SECRET_LENGTH = 4;

/**
 * `text` with every occurrence of each of `secrets` (as sent, or percent-encoded as in a URL) replaced
 * by `marker`; values shorter than `minLength` are left alone. Longest first: a secret that holds
 * another is replaced whole.
 */
export function redactSecrets(text: string, secrets: Iterable<string>, marker = REDACTED, minLength = MIN_SECRET_LENGTH): string {
  const values = new Set<string>();
  for (const s of secrets) {
    if (s.length < minLength) continue;
    values.add(s);
    const encoded = encodeURIComponent(s);
    if (encoded !== s) values.add(encoded);
  }
  let out = text;
  for (const s of [...values].sort((a, b) => b.length - a.length)) if (out.includes(s)) out = out.split(s).join(marker);
  return out;
}

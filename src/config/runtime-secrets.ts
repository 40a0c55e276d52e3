/**
 * The embedded default (no configuration): SECRETS_KEY and ADMIN_API_KEY are generated on first start
 * into the data dir (mode 0600) and reused afterwards. Production sets both in the environment.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { isSecretsKey, SECRETS_KEY_RULE } from '../lib/crypto.js';
import { assertWritableDir, StartupError } from '../store/embedded-redis.js';
import type { Config } from './config.js';

/** ADMIN_API_KEY's shortest length (config.ts), also for the key kept in the data dir. */
const ADMIN_KEY_MIN_LENGTH = 16;

export interface RuntimeSecrets {
  secretsKey: string;
  adminApiKey: string;
  generated: string[];
}

function readOrCreate(file: string, make: () => string, generated: string[]): string {
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  writeFileSync(file, make() + '\n', { mode: 0o600 });
  chmodSync(file, 0o600);
  generated.push(file);
  return readFileSync(file, 'utf8').trim();
}

export function resolveRuntimeSecrets(config: Config): RuntimeSecrets {
  const generated: string[] = [];
  if (config.secretsKey && config.adminApiKey) {
    return { secretsKey: config.secretsKey, adminApiKey: config.adminApiKey, generated };
  }
  assertWritableDir(resolve(config.dataDir), 'the generated SECRETS_KEY and ADMIN_API_KEY (none is set)');
  const keyFile = join(config.dataDir, 'secrets.key');
  const secretsKey = config.secretsKey ?? readOrCreate(keyFile, () => randomBytes(32).toString('base64'), generated);
  if (!isSecretsKey(secretsKey)) {
    throw new StartupError(
      `Syndicast cannot use the SECRETS_KEY it keeps in ${resolve(keyFile)}: the file's key ${SECRETS_KEY_RULE}. ` +
        'Restore the file from where it was kept (the stored platform credentials can only be read with it), or set SECRETS_KEY.',
    );
  }
  const adminFile = join(config.dataDir, 'admin-api-key');
  const adminApiKey = config.adminApiKey ?? readOrCreate(adminFile, () => 'sk_admin_' + randomBytes(24).toString('base64url'), generated);
  // ADMIN_API_KEY's own rule (config.ts). An empty file (an interrupted write) started a service no
  // key could administer, with nothing said; a short one was a weak admin key taken as it was.
  if (adminApiKey.length < ADMIN_KEY_MIN_LENGTH) {
    throw new StartupError(
      `Syndicast cannot use the admin API key it keeps in ${resolve(adminFile)}: the file holds ${adminApiKey.length === 0 ? 'no key' : `a key of ${adminApiKey.length} characters`}, and an admin key needs at least ${ADMIN_KEY_MIN_LENGTH} characters. ` +
        'Put a longer key in the file, delete the file to have a new key generated at the next start, or set ADMIN_API_KEY.',
    );
  }
  // A key is sent as `Authorization: Bearer <key>`, one token (auth.plugin.ts): a key with a space or
  // a second line in it could never be sent, and the service would start with no usable admin key.
  if (/\s/.test(adminApiKey)) {
    throw new StartupError(
      `Syndicast cannot use the admin API key it keeps in ${resolve(adminFile)}: the file's key has whitespace in it (a space, a tab or a second line), and an admin key is sent as one token after "Bearer", so no request could carry it. ` +
        'Put a key without whitespace in the file, delete the file to have a new key generated at the next start, or set ADMIN_API_KEY.',
    );
  }
  return { secretsKey, adminApiKey, generated };
}

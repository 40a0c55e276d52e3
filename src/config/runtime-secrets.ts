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
  const adminApiKey =
    config.adminApiKey ?? readOrCreate(join(config.dataDir, 'admin-api-key'), () => 'sk_admin_' + randomBytes(24).toString('base64url'), generated);
  return { secretsKey, adminApiKey, generated };
}

import { randomBytes } from 'node:crypto';
import { SecretBox, SecretUnreadableError, tryOpen, undefinedIfUnreadable } from '../../src/lib/crypto.js';

const key = (): string => randomBytes(32).toString('base64');

test('seals and opens; a different key cannot open', () => {
  const k = key();
  const box = new SecretBox(k);
  const sealed = box.encrypt('refresh-token-123');
  expect(sealed).not.toContain('refresh-token-123');
  expect(box.decrypt(sealed)).toBe('refresh-token-123');
  expect(() => new SecretBox(key()).decrypt(sealed)).toThrow();
});

test('SECRETS_KEY rotation: data sealed under the previous key still opens, new data uses the new key', () => {
  const oldKey = key();
  const newKey = key();
  const sealedOld = new SecretBox(oldKey).encrypt('old secret');
  const rotated = new SecretBox(newKey, [oldKey]);
  expect(rotated.decrypt(sealedOld)).toBe('old secret');
  const sealedNew = rotated.encrypt('new secret');
  expect(new SecretBox(newKey).decrypt(sealedNew)).toBe('new secret');
  expect(() => new SecretBox(oldKey).decrypt(sealedNew)).toThrow();
});

test('keys must be 32 bytes', () => {
  expect(() => new SecretBox(randomBytes(16).toString('base64'))).toThrow(/32 bytes/);
  expect(() => new SecretBox(key(), ['short'])).toThrow(/SECRETS_KEY_PREVIOUS/);
});

test('tryOpen: undefined when no configured key opens the value, other errors thrown; undefinedIfUnreadable likewise as a catch handler', async () => {
  const sealed = new SecretBox(key()).encrypt('webhook secret');
  const box = new SecretBox(key());
  expect(tryOpen(() => box.decrypt(sealed))).toBeUndefined();
  expect(tryOpen(() => box.decrypt('not sealed'))).toBeUndefined();
  expect(tryOpen(() => box.decrypt(box.encrypt('mine')))).toBe('mine');
  expect(() =>
    tryOpen(() => {
      throw new Error('redis down');
    }),
  ).toThrow('redis down');
  await expect(Promise.reject(new SecretUnreadableError()).catch(undefinedIfUnreadable)).resolves.toBeUndefined();
  await expect(Promise.reject(new Error('redis down')).catch(undefinedIfUnreadable)).rejects.toThrow('redis down');
});

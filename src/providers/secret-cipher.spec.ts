import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { keyIdOf, SecretCipher, SecretCipherError } from './secret-cipher.js';

const keyA = randomBytes(32);
const keyB = randomBytes(32);

describe(SecretCipher.name, () => {
  it('round-trips a secret and never writes it in clear', () => {
    const sut = new SecretCipher(keyA);
    const blob = sut.encrypt('sk-live-secret', 'provider:1');
    expect(blob).not.toContain('sk-live-secret');
    expect(blob.split('.')).toHaveLength(5);
    expect(blob.startsWith(`v1.${keyIdOf(keyA)}.`)).toBe(true);
    expect(sut.decrypt(blob, 'provider:1')).toBe('sk-live-secret');
  });

  it('uses a fresh IV per encryption', () => {
    const sut = new SecretCipher(keyA);
    expect(sut.encrypt('x', 'a')).not.toBe(sut.encrypt('x', 'a'));
  });

  it('round-trips unicode and empty-ish secrets', () => {
    const sut = new SecretCipher(keyA);
    for (const secret of ['k', 'ключ-🔑', 'a'.repeat(5000)])
      expect(sut.decrypt(sut.encrypt(secret, 'r'), 'r')).toBe(secret);
  });

  it('decrypts with a previous key after rotation and reports blobs to re-encrypt', () => {
    const old = new SecretCipher(keyA);
    const blob = old.encrypt('sk-old', 'provider:1');
    const sut = new SecretCipher(keyB, [keyA]);
    expect(sut.isCurrent(blob)).toBe(false);
    expect(sut.decrypt(blob, 'provider:1')).toBe('sk-old');
    const reencrypted = sut.encrypt('sk-old', 'provider:1');
    expect(sut.isCurrent(reencrypted)).toBe(true);
    expect(sut.currentKeyId).toBe(keyIdOf(keyB));
  });

  it('refuses a blob of a key it does not have', () => {
    const blob = new SecretCipher(keyA).encrypt('sk', 'r');
    expect(() => new SecretCipher(keyB).decrypt(blob, 'r')).toThrow(SecretCipherError);
  });

  it.each([
    ['ciphertext', 4],
    ['tag', 3],
    ['iv', 2],
  ])('detects a tampered %s', (_name, index) => {
    const sut = new SecretCipher(keyA);
    const parts = sut.encrypt('sk-secret', 'r').split('.');
    const bytes = Buffer.from(parts[index], 'base64url');
    bytes[0] = bytes[0] ^ 0x01;
    parts[index] = bytes.toString('base64url');
    expect(() => sut.decrypt(parts.join('.'), 'r')).toThrow(/does not authenticate/);
  });

  it('binds a blob to its row (another aad fails)', () => {
    const sut = new SecretCipher(keyA);
    const blob = sut.encrypt('sk-secret', 'provider:1');
    expect(() => sut.decrypt(blob, 'provider:2')).toThrow(SecretCipherError);
  });

  it.each(['', 'plain', 'v2.a.b.c.d', 'v1.a.b.c'])('refuses malformed blob %j', (blob) => {
    expect(() => new SecretCipher(keyA).decrypt(blob, 'r')).toThrow(SecretCipherError);
  });

  it('refuses keys that are not 32 bytes', () => {
    expect(() => new SecretCipher(randomBytes(16))).toThrow(SecretCipherError);
  });
});

import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

const FORMAT = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;

export class SecretCipherError extends Error {}

interface Key {
  id: string;
  bytes: Buffer;
}

/** A public fingerprint of a key (the first 8 bytes of its SHA-256), so a blob names its key. */
export function keyIdOf(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 16);
}

/**
 * AES-256-GCM for secrets at rest (provider API keys). A blob is
 * `v1.<key id>.<iv>.<tag>.<ciphertext>` (base64url parts), bound to `aad` (the row it belongs to),
 * so it cannot be moved to another row. New blobs use the current key; older keys still decrypt,
 * so ENCRYPTION_KEY can be rotated (then `isCurrent` tells which rows to re-encrypt).
 */
export class SecretCipher {
  private readonly current: Key;
  private readonly keys = new Map<string, Key>();

  constructor(currentKey: Buffer, previousKeys: readonly Buffer[] = []) {
    for (const bytes of [currentKey, ...previousKeys]) {
      if (bytes.length !== 32) throw new SecretCipherError('an encryption key must be 32 bytes');
      const key = { id: keyIdOf(bytes), bytes };
      if (!this.keys.has(key.id)) this.keys.set(key.id, key);
    }
    this.current = this.keys.get(keyIdOf(currentKey))!;
  }

  get currentKeyId(): string {
    return this.current.id;
  }

  encrypt(plaintext: string, aad: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.current.bytes, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(aad, 'utf8'));
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return [FORMAT, this.current.id, iv, cipher.getAuthTag(), ciphertext]
      .map((part) => (typeof part === 'string' ? part : part.toString('base64url')))
      .join('.');
  }

  decrypt(blob: string, aad: string): string {
    const parts = blob.split('.');
    if (parts.length !== 5 || parts[0] !== FORMAT) throw new SecretCipherError('not an encrypted secret');
    const [, keyId, iv, tag, ciphertext] = parts as [string, string, string, string, string];
    const key = this.keys.get(keyId);
    if (!key) {
      throw new SecretCipherError(
        `encrypted with key ${keyId}, which is neither ENCRYPTION_KEY nor in ENCRYPTION_KEYS_PREVIOUS`,
      );
    }
    try {
      const decipher = createDecipheriv('aes-256-gcm', key.bytes, Buffer.from(iv, 'base64url'), {
        authTagLength: TAG_BYTES,
      });
      decipher.setAAD(Buffer.from(aad, 'utf8'));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([
        decipher.update(Buffer.from(ciphertext, 'base64url')),
        decipher.final(),
      ]).toString('utf8');
    } catch {
      throw new SecretCipherError('the encrypted secret does not authenticate (tampered, or the wrong row)');
    }
  }

  /** True when the blob is encrypted with the current key (no re-encryption needed). */
  isCurrent(blob: string): boolean {
    return blob.startsWith(`${FORMAT}.${this.current.id}.`);
  }
}

import { Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { IsNull, Not, type Repository } from 'typeorm';
import { TenantEvents } from '../tenants/tenant-events.service.js';
import { ProviderEntity } from './entities/provider.entity.js';
import { apiKeyAad } from './provider-record.js';
import { SecretCipher } from './secret-cipher.js';

/**
 * After ENCRYPTION_KEY was rotated (the old key moved to ENCRYPTION_KEYS_PREVIOUS), re-encrypts
 * every stored API key with the current key at start-up. Safe with several instances starting at
 * once: a row is only replaced if it still holds the blob that was read.
 */
@Injectable()
export class ProviderKeyRotationService implements OnApplicationBootstrap {
  private readonly logger = new Logger('ProviderKeys');

  constructor(
    @InjectRepository(ProviderEntity) private readonly providers: Repository<ProviderEntity>,
    private readonly cipher: SecretCipher,
    private readonly events: TenantEvents,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.reencryptAll();
  }

  /** Returns how many keys were re-encrypted. */
  async reencryptAll(): Promise<number> {
    const rows = await this.providers.find({
      select: { id: true, tenantId: true, apiKeyEncrypted: true },
      where: { apiKeyEncrypted: Not(IsNull()) },
    });
    const tenants = new Set<string>();
    let count = 0;
    for (const row of rows) {
      const blob = row.apiKeyEncrypted!;
      if (this.cipher.isCurrent(blob)) continue;
      let plaintext: string;
      try {
        plaintext = this.cipher.decrypt(blob, apiKeyAad(row.id));
      } catch (e) {
        this.logger.error(
          `The API key of provider ${row.id} cannot be re-encrypted: ${(e as Error).message}`,
        );
        continue;
      }
      const result = await this.providers.update(
        { id: row.id, apiKeyEncrypted: blob },
        { apiKeyEncrypted: this.cipher.encrypt(plaintext, apiKeyAad(row.id)) },
      );
      if (result.affected) {
        count++;
        tenants.add(row.tenantId);
      }
    }
    for (const tenantId of tenants) await this.events.changed({ tenantId, scope: 'config' });
    if (count > 0)
      this.logger.log(`Re-encrypted ${count} provider API key(s) with the current ENCRYPTION_KEY`);
    return count;
  }
}

import { Column, CreateDateColumn, Entity, PrimaryColumn, UpdateDateColumn, VersionColumn } from 'typeorm';
import type { ModelInfo, ProviderKind } from '../provider.types.js';

/** An upstream LLM provider of one tenant. The API key is stored encrypted (SecretCipher). */
@Entity('providers')
export class ProviderEntity {
  @PrimaryColumn({ type: 'uuid' })
  id!: string;

  @Column({ name: 'tenant_id', type: 'varchar', length: 64 })
  tenantId!: string;

  @Column({ type: 'varchar', length: 255 })
  name!: string;

  @Column({ type: 'varchar', length: 32 })
  kind!: ProviderKind;

  @Column({ name: 'base_url', type: 'varchar', length: 2048 })
  baseUrl!: string;

  /** `SecretCipher` blob bound to the provider id; null when no key is configured. */
  @Column({ name: 'api_key_encrypted', type: 'text', nullable: true })
  apiKeyEncrypted!: string | null;

  @Column({ name: 'default_model', type: 'varchar', length: 255 })
  defaultModel!: string;

  @Column({ type: 'jsonb' })
  models!: ModelInfo[];

  @Column({ name: 'is_default', type: 'boolean' })
  isDefault!: boolean;

  @Column({ type: 'jsonb' })
  headers!: Record<string, string>;

  @Column({ name: 'timeout_ms', type: 'integer' })
  timeoutMs!: number;

  @Column({ name: 'store_responses', type: 'boolean' })
  storeResponses!: boolean;

  /** Bumped on every save: part of the provider's `version` (SDK clients are cached by it). */
  @VersionColumn({ type: 'integer' })
  revision!: number;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}

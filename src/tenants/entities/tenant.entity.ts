import { Column, CreateDateColumn, Entity, PrimaryColumn, UpdateDateColumn } from 'typeorm';
import type { TenantSettings } from '../tenant-config.types.js';

@Entity('tenants')
export class TenantEntity {
  @PrimaryColumn({ type: 'varchar', length: 64 })
  id!: string;

  @Column({ type: 'varchar', length: 255 })
  name!: string;

  @Column({ name: 'default_model', type: 'varchar', length: 255, nullable: true })
  defaultModel!: string | null;

  /** Both set (the tenant's own limit) or both null (the configured default applies). */
  @Column({ name: 'rate_limit_requests', type: 'integer', nullable: true })
  rateLimitRequests!: number | null;

  @Column({ name: 'rate_limit_window_s', type: 'integer', nullable: true })
  rateLimitWindowS!: number | null;

  @Column({ type: 'jsonb' })
  settings!: TenantSettings;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}

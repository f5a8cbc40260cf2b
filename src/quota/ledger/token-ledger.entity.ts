import { Column, Entity, Index, PrimaryColumn, type ValueTransformer } from 'typeorm';

export const LEDGER_REASONS = [
  'admin_adjustment',
  'reservation',
  'settlement',
  'release',
  'shortfall',
] as const;
export type LedgerReason = (typeof LEDGER_REASONS)[number];

/** `pg` returns BIGINT as a string; balances stay far below 2^53, so a number is exact. */
const bigintAsNumber: ValueTransformer = {
  to: (value: number | undefined) => value,
  from: (value: string | number | null) => (value === null ? null : Number(value)),
};

/**
 * One change of a token balance (tenant, user), written after the change was made in the store. The
 * `delta`s of a user sum to their balance; `balance_after` is the balance right after this change.
 * A `shortfall` row (delta 0) records tokens that were due but could not be charged because the
 * balance never goes below zero.
 */
@Entity('token_ledger')
@Index('IDX_token_ledger_tenant_user_created', ['tenantId', 'userId', 'createdAt'])
export class TokenLedgerEntity {
  /** Made by the application, so that a retried insert can never write the row twice. */
  @PrimaryColumn({ type: 'uuid' })
  id!: string;

  @Column({ name: 'tenant_id', type: 'varchar', length: 64 })
  tenantId!: string;

  @Column({ name: 'user_id', type: 'varchar', length: 255 })
  userId!: string;

  @Column({ type: 'bigint', transformer: bigintAsNumber })
  delta!: number;

  @Column({ name: 'balance_after', type: 'bigint', transformer: bigintAsNumber })
  balanceAfter!: number;

  /** Tokens due but not charged (only on `shortfall` rows). */
  @Column({ type: 'bigint', default: 0, transformer: bigintAsNumber })
  shortfall!: number;

  @Column({ type: 'varchar', length: 32 })
  reason!: LedgerReason;

  @Column({ name: 'completion_id', type: 'varchar', length: 128, nullable: true })
  completionId!: string | null;

  /** Who made an admin adjustment (the admin's user id, or `admin-token`). */
  @Column({ type: 'varchar', length: 255, nullable: true })
  actor!: string | null;

  /** The admin's free-text reason of an adjustment. */
  @Column({ type: 'varchar', length: 1000, nullable: true })
  note!: string | null;

  /** Details: the estimate of a reservation, the usage and model of a settlement. */
  @Column({ type: 'jsonb', nullable: true })
  meta!: Record<string, unknown> | null;

  /** When the balance changed (not when the row was written, which is later). */
  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}

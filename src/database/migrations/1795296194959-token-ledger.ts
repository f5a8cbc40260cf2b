import type { MigrationInterface, QueryRunner } from 'typeorm';

/** The token ledger: every change of a (tenant, user) token balance, written after the store's change. */
export class TokenLedger1795296194959 implements MigrationInterface {
  name = 'TokenLedger1795296194959';

  async up(queryRunner: QueryRunner): Promise<void> {
    // No foreign key to tenants: the ledger is an audit trail that outlives a deleted tenant, and a
    // queued row must never become impossible to write.
    await queryRunner.query(`
      CREATE TABLE "token_ledger" (
        "id" uuid NOT NULL,
        "tenant_id" varchar(64) NOT NULL,
        "user_id" varchar(255) NOT NULL,
        "delta" bigint NOT NULL,
        "balance_after" bigint NOT NULL,
        "shortfall" bigint NOT NULL DEFAULT 0,
        "reason" varchar(32) NOT NULL,
        "completion_id" varchar(128),
        "actor" varchar(255),
        "note" varchar(1000),
        "meta" jsonb,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "PK_token_ledger" PRIMARY KEY ("id"),
        CONSTRAINT "CHK_token_ledger_reason" CHECK (
          "reason" IN ('admin_adjustment', 'reservation', 'settlement', 'release', 'shortfall')
        ),
        CONSTRAINT "CHK_token_ledger_balance_after" CHECK ("balance_after" >= 0),
        CONSTRAINT "CHK_token_ledger_shortfall" CHECK ("shortfall" >= 0)
      )`);
    await queryRunner.query(
      `CREATE INDEX "IDX_token_ledger_tenant_user_created" ON "token_ledger" ("tenant_id", "user_id", "created_at")`,
    );
    await queryRunner.query(
      `CREATE INDEX "IDX_token_ledger_completion" ON "token_ledger" ("completion_id") WHERE "completion_id" IS NOT NULL`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE "token_ledger"`);
  }
}

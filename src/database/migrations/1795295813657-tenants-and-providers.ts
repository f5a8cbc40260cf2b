import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Tenants, their members and their upstream providers (API keys encrypted by the application). */
export class TenantsAndProviders1795295813657 implements MigrationInterface {
  name = 'TenantsAndProviders1795295813657';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE "tenants" (
        "id" varchar(64) NOT NULL,
        "name" varchar(255) NOT NULL,
        "default_model" varchar(255),
        "rate_limit_requests" integer,
        "rate_limit_window_s" integer,
        "settings" jsonb NOT NULL DEFAULT '{}'::jsonb,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        "updated_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "PK_tenants" PRIMARY KEY ("id"),
        CONSTRAINT "CHK_tenants_id" CHECK ("id" ~ '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$'),
        CONSTRAINT "CHK_tenants_rate_limit" CHECK (
          ("rate_limit_requests" IS NULL AND "rate_limit_window_s" IS NULL)
          OR ("rate_limit_requests" > 0 AND "rate_limit_window_s" > 0)
        )
      )`);
    await queryRunner.query(`
      CREATE TABLE "tenant_members" (
        "tenant_id" varchar(64) NOT NULL,
        "user_id" varchar(255) NOT NULL,
        "role" varchar(16) NOT NULL DEFAULT 'member',
        "created_at" timestamptz NOT NULL DEFAULT now(),
        "updated_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "PK_tenant_members" PRIMARY KEY ("tenant_id", "user_id"),
        CONSTRAINT "FK_tenant_members_tenant" FOREIGN KEY ("tenant_id") REFERENCES "tenants" ("id") ON DELETE CASCADE,
        CONSTRAINT "CHK_tenant_members_role" CHECK ("role" IN ('member', 'owner')),
        CONSTRAINT "CHK_tenant_members_user_id" CHECK (length("user_id") > 0)
      )`);
    await queryRunner.query(`CREATE INDEX "IDX_tenant_members_user_id" ON "tenant_members" ("user_id")`);
    await queryRunner.query(`
      CREATE TABLE "providers" (
        "id" uuid NOT NULL,
        "tenant_id" varchar(64) NOT NULL,
        "name" varchar(255) NOT NULL,
        "kind" varchar(32) NOT NULL,
        "base_url" varchar(2048) NOT NULL,
        "api_key_encrypted" text,
        "default_model" varchar(255) NOT NULL,
        "models" jsonb NOT NULL DEFAULT '[]'::jsonb,
        "is_default" boolean NOT NULL DEFAULT false,
        "headers" jsonb NOT NULL DEFAULT '{}'::jsonb,
        "timeout_ms" integer NOT NULL DEFAULT 120000,
        "store_responses" boolean NOT NULL DEFAULT true,
        "revision" integer NOT NULL DEFAULT 1,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        "updated_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "PK_providers" PRIMARY KEY ("id"),
        CONSTRAINT "FK_providers_tenant" FOREIGN KEY ("tenant_id") REFERENCES "tenants" ("id") ON DELETE CASCADE,
        CONSTRAINT "UQ_providers_tenant_name" UNIQUE ("tenant_id", "name"),
        CONSTRAINT "CHK_providers_kind" CHECK ("kind" IN ('chat_completions', 'responses')),
        CONSTRAINT "CHK_providers_timeout" CHECK ("timeout_ms" > 0)
      )`);
    // At most one default provider per tenant.
    await queryRunner.query(
      `CREATE UNIQUE INDEX "UQ_providers_tenant_default" ON "providers" ("tenant_id") WHERE "is_default"`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE "providers"`);
    await queryRunner.query(`DROP TABLE "tenant_members"`);
    await queryRunner.query(`DROP TABLE "tenants"`);
  }
}

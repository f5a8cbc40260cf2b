import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Conversations, their messages and saved system prompts. Owned by (tenant_id, user_id) with no
 * foreign key to tenants: a deleted tenant's rows are removed by tenant_id instead.
 */
export class Conversations1795296200000 implements MigrationInterface {
  name = 'Conversations1795296200000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE "conversations" (
        "id" uuid NOT NULL DEFAULT gen_random_uuid(),
        "tenant_id" text NOT NULL,
        "user_id" text NOT NULL,
        "title" text,
        "model" text,
        "provider_id" text,
        "active_system_prompt_id" uuid,
        "system_prompt" text,
        "tools_enabled" boolean NOT NULL DEFAULT false,
        "active_tools" jsonb NOT NULL DEFAULT '[]'::jsonb,
        "metadata" jsonb NOT NULL DEFAULT '{}'::jsonb,
        "last_seq" integer NOT NULL DEFAULT 0,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        "updated_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "PK_conversations" PRIMARY KEY ("id"),
        CONSTRAINT "CHK_conversations_active_tools" CHECK (jsonb_typeof("active_tools") = 'array'),
        CONSTRAINT "CHK_conversations_metadata" CHECK (jsonb_typeof("metadata") = 'object'),
        CONSTRAINT "CHK_conversations_last_seq" CHECK ("last_seq" >= 0)
      )`);
    // The list (newest first, keyset paging on updated_at, id) and every lookup by owner.
    await queryRunner.query(
      `CREATE INDEX "IDX_conversations_owner_updated" ON "conversations" ("tenant_id", "user_id", "updated_at" DESC, "id" DESC)`,
    );
    await queryRunner.query(`
      CREATE TABLE "messages" (
        "id" uuid NOT NULL DEFAULT gen_random_uuid(),
        "conversation_id" uuid NOT NULL,
        "tenant_id" text NOT NULL,
        "user_id" text NOT NULL,
        "seq" integer NOT NULL,
        "role" text NOT NULL,
        "content" jsonb,
        "tool_calls" jsonb,
        "tool_call_id" text,
        "name" text,
        "status" text NOT NULL,
        "provider_response_id" text,
        "usage" jsonb,
        "completion_id" text,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "PK_messages" PRIMARY KEY ("id"),
        CONSTRAINT "FK_messages_conversation" FOREIGN KEY ("conversation_id") REFERENCES "conversations" ("id") ON DELETE CASCADE,
        CONSTRAINT "UQ_messages_conversation_seq" UNIQUE ("conversation_id", "seq"),
        CONSTRAINT "CHK_messages_seq" CHECK ("seq" > 0),
        CONSTRAINT "CHK_messages_role" CHECK ("role" IN ('system', 'user', 'assistant', 'tool', 'function')),
        CONSTRAINT "CHK_messages_status" CHECK ("status" IN ('complete', 'incomplete', 'success', 'error'))
      )`);
    await queryRunner.query(`
      CREATE TABLE "system_prompts" (
        "id" uuid NOT NULL DEFAULT gen_random_uuid(),
        "tenant_id" text NOT NULL,
        "user_id" text NOT NULL,
        "name" text NOT NULL,
        "content" text NOT NULL,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        "updated_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "PK_system_prompts" PRIMARY KEY ("id")
      )`);
    await queryRunner.query(
      `CREATE INDEX "IDX_system_prompts_owner" ON "system_prompts" ("tenant_id", "user_id")`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE "system_prompts"`);
    await queryRunner.query(`DROP TABLE "messages"`);
    await queryRunner.query(`DROP TABLE "conversations"`);
  }
}

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { EmbeddedPostgres } from '../../src/database/embedded-postgres.js';

async function withClient<T>(db: EmbeddedPostgres, run: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client(db.url);
  await client.connect();
  try {
    return await run(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

describe('embedded database (PGlite) in a data directory', () => {
  const dir = mkdtempSync(join(tmpdir(), 'parley-embedded-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps every committed row when the process dies without shutting down', async () => {
    const first = await EmbeddedPostgres.start(dir);
    await withClient(first, async (client) => {
      await client.query('CREATE TABLE kept (id int PRIMARY KEY)');
      await client.query('INSERT INTO kept SELECT generate_series(1, 100)');
      await client.query('INSERT INTO kept VALUES (101)');
    });
    // What dying looks like to the database: no shutdown checkpoint, nothing flushed after commit.
    await (Reflect.get(first, 'worker') as Worker).terminate();

    const second = await EmbeddedPostgres.start(dir);
    try {
      const { rows } = await withClient(second, (client) =>
        client.query<{ n: number }>('SELECT count(*)::int AS n FROM kept'),
      );
      expect(rows[0].n).toBe(101);
    } finally {
      await second.stop();
    }
  });
});

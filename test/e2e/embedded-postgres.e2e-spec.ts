import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

describe('embedded database (PGlite): its wire server', () => {
  let db: EmbeddedPostgres;
  let pool: pg.Pool;

  beforeAll(async () => {
    db = await EmbeddedPostgres.start('memory://');
    pool = new pg.Pool({ connectionString: db.url, max: 4 });
    await pool.query('CREATE TABLE notes (id serial PRIMARY KEY, owner text, body text)');
  });
  afterAll(async () => {
    await pool.end();
    await db.stop();
  });

  it('answers many connections at once, each query its own rows', async () => {
    const owners = Array.from({ length: 200 }, (_, i) => `owner-${i}`);
    const ids = await Promise.all(
      owners.map((owner) =>
        pool.query<{ owner: string }>('INSERT INTO notes (owner) VALUES ($1) RETURNING owner', [owner]),
      ),
    );
    expect(ids.map((r) => r.rows[0].owner)).toEqual(owners);
  });

  it("keeps other connections out of one connection's transaction until it ends", async () => {
    const a = await pool.connect();
    const b = await pool.connect();
    try {
      await a.query('BEGIN');
      await a.query("INSERT INTO notes (owner) VALUES ('in-tx')");
      let bDone = false;
      const bInsert = b.query("INSERT INTO notes (owner) VALUES ('outside')").then(() => (bDone = true));
      await new Promise((r) => setTimeout(r, 100));
      expect(bDone).toBe(false);
      await a.query('ROLLBACK');
      await bInsert;
      const { rows } = await b.query<{ owner: string }>(
        "SELECT owner FROM notes WHERE owner IN ('in-tx', 'outside')",
      );
      expect(rows).toEqual([{ owner: 'outside' }]);
    } finally {
      a.release();
      b.release();
    }
  });

  it('rolls back the transaction of a client that went away, and serves the others', async () => {
    const gone = await pool.connect();
    await gone.query('BEGIN');
    await gone.query("INSERT INTO notes (owner) VALUES ('abandoned')");
    gone.release(new Error('client went away'));
    const { rows } = await pool.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM notes WHERE owner = 'abandoned'",
    );
    expect(rows[0].n).toBe(0);
  });

  it('answers an error, then the next query on the same connection', async () => {
    const client = await pool.connect();
    try {
      await expect(client.query('SELECT no_such_column FROM notes')).rejects.toThrow('no_such_column');
      const { rows } = await client.query<{ answer: number }>('SELECT $1::int AS answer', [42]);
      expect(rows).toEqual([{ answer: 42 }]);
    } finally {
      client.release();
    }
  });

  it('takes a query larger than one socket read', async () => {
    const body = 'x'.repeat(1_000_000);
    const { rows } = await pool.query<{ size: number }>(
      'INSERT INTO notes (owner, body) VALUES ($1, $2) RETURNING length(body) AS size',
      ['big', body],
    );
    expect(rows).toEqual([{ size: 1_000_000 }]);
  });
});

import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { pgcrypto } from '@electric-sql/pglite/contrib/pgcrypto';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';

/**
 * Real PostgreSQL (PGlite, compiled to WASM) served in-process on a loopback port, so the normal
 * `pg` driver and the same migrations work with no server installed. One process per data
 * directory: PGlite does not lock it.
 */
export class EmbeddedPostgres {
  private constructor(
    private readonly db: PGlite,
    private readonly server: PGLiteSocketServer,
    readonly url: string,
  ) {}

  /** `dataDir` is a folder (made if missing), or `memory://` for a throw-away database. */
  static async start(dataDir: string): Promise<EmbeddedPostgres> {
    const inMemory = dataDir.startsWith('memory://');
    const path = inMemory ? undefined : resolve(dataDir);
    if (path) mkdirSync(path, { recursive: true });
    const db = await PGlite.create({ dataDir: path, extensions: { pgcrypto } });
    const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: 8 });
    await server.start();
    const conn = server.getServerConn();
    const port = conn.slice(conn.lastIndexOf(':') + 1);
    return new EmbeddedPostgres(db, server, `postgres://postgres@127.0.0.1:${port}/postgres`);
  }

  async stop(): Promise<void> {
    await this.server.stop();
    await this.db.close();
  }
}

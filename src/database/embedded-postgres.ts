import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { Worker } from 'node:worker_threads';

const require = createRequire(import.meta.url);

// PGlite runs PostgreSQL as WASM on the thread that owns it; on the main thread every query would
// stall HTTP handling. It lives in a worker instead, serving the wire protocol on a loopback port.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { PGlite } = require(workerData.modules.pglite);
const { pgcrypto } = require(workerData.modules.pgcrypto);
const { PGLiteSocketServer } = require(workerData.modules.socket);
(async () => {
  const startParams = [...PGlite.defaultStartParams, ...workerData.settings.flatMap((s) => ['-c', s])];
  const db = await PGlite.create({ dataDir: workerData.dataDir, extensions: { pgcrypto }, startParams });
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: 8 });
  await server.start();
  parentPort.on('message', async (message) => {
    if (message !== 'stop') return;
    try {
      await server.stop();
      await db.close();
    } finally {
      parentPort.postMessage({ type: 'stopped' });
    }
  });
  parentPort.postMessage({ type: 'ready', conn: server.getServerConn() });
})().catch((e) => parentPort.postMessage({ type: 'error', message: String((e && e.stack) || e) }));
`;

/**
 * PostgreSQL settings of the embedded server. PGlite already runs with fsync off (its default
 * `-F`; its Node file system could not fsync anyway), so a data directory survives the process
 * dying (every write has reached the OS) but not the OS dying; nothing here weakens that.
 *
 * - `wal_init_zero=off`, always: a new 16 MB WAL segment is no longer written out as zeros first
 *   (in memory that also meant copying it over and over: PGlite's in-memory files grow by copying).
 *   Only space preallocation depends on it, not what a crash leaves.
 * - In memory only, where nothing outlives the process: `synchronous_commit=off`, so a commit does
 *   not write the WAL out (PGlite has no WAL writer: it is written when its buffers fill). With a
 *   data directory that would lose committed transactions when the process dies, so not there.
 */
function embeddedSettings(inMemory: boolean): string[] {
  return ['wal_init_zero=off', ...(inMemory ? ['synchronous_commit=off'] : [])];
}

type WorkerMessage =
  { type: 'ready'; conn: string } | { type: 'stopped' } | { type: 'error'; message: string };

/**
 * Real PostgreSQL (PGlite, compiled to WASM) served in-process on a loopback port, from a worker
 * thread, so the normal `pg` driver and the same migrations work with no server installed. One
 * process per data directory: PGlite does not lock it.
 */
export class EmbeddedPostgres {
  private constructor(
    private readonly worker: Worker,
    readonly url: string,
  ) {}

  /** `dataDir` is a folder (made if missing), or `memory://` for a throw-away database. */
  static async start(dataDir: string): Promise<EmbeddedPostgres> {
    const inMemory = dataDir.startsWith('memory://');
    const path = inMemory ? undefined : resolve(dataDir);
    if (path) mkdirSync(path, { recursive: true });
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        dataDir: path,
        settings: embeddedSettings(inMemory),
        modules: {
          pglite: require.resolve('@electric-sql/pglite'),
          pgcrypto: require.resolve('@electric-sql/pglite/contrib/pgcrypto'),
          socket: require.resolve('@electric-sql/pglite-socket'),
        },
      },
    });
    const conn = await new Promise<string>((resolveReady, reject) => {
      const onMessage = (message: WorkerMessage): void => {
        if (message.type === 'ready') resolveReady(message.conn);
        else if (message.type === 'error')
          reject(new Error(`The embedded database did not start: ${message.message}`));
      };
      worker.on('message', onMessage);
      worker.once('error', reject);
      worker.once('exit', (code) =>
        reject(new Error(`The embedded database stopped during start-up (exit ${code})`)),
      );
    });
    worker.removeAllListeners('exit');
    const port = conn.slice(conn.lastIndexOf(':') + 1);
    return new EmbeddedPostgres(worker, `postgres://postgres@127.0.0.1:${port}/postgres`);
  }

  async stop(): Promise<void> {
    const stopped = new Promise<void>((resolveStopped) => {
      this.worker.on('message', (message: WorkerMessage) => {
        if (message.type === 'stopped') resolveStopped();
      });
      this.worker.once('exit', () => resolveStopped());
    });
    this.worker.postMessage('stop');
    await stopped;
    await this.worker.terminate();
  }
}

import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { Worker } from 'node:worker_threads';

const require = createRequire(import.meta.url);

// PGlite runs PostgreSQL as WASM on the thread that owns it; on the main thread every query would
// stall HTTP handling. It lives in a worker instead, serving the wire protocol on a loopback port.
//
// The server is Parley's own rather than @electric-sql/pglite-socket's, which hands PGlite one
// protocol message at a time and writes each reply part separately: a parameterised query (Parse,
// Bind, Describe, Execute, Sync) cost five WASM entries and several socket writes. Here everything a
// client sent that is complete goes to PGlite in one call, and its reply leaves in one write.
// PGlite has a single session, so a connection inside a transaction is served before any other.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const net = require('node:net');
const { PGlite } = require(workerData.modules.pglite);
const { pgcrypto } = require(workerData.modules.pgcrypto);

const SSL_REQUEST = 80877103;
const CANCEL_REQUEST = 80877102;
const TERMINATE = 0x58;
// Parse, Bind, Describe, Execute, Close, Flush: a request goes on until its Sync.
const EXTENDED_QUERY_STEPS = new Set([0x50, 0x42, 0x44, 0x45, 0x43, 0x48]);

function serve(db) {
  const queue = [];
  let busy = false;
  let owner = null;

  async function pump() {
    if (busy) return;
    busy = true;
    while (queue.length > 0) {
      const index = owner && db.isInTransaction() ? queue.findIndex((job) => job.conn === owner) : 0;
      if (index < 0) break;
      const { conn, bytes } = queue.splice(index, 1)[0];
      if (conn.destroyed) continue;
      const reply = [];
      try {
        await db.runExclusive(() =>
          db.execProtocolRawStream(bytes, { onRawData: (data) => reply.push(Buffer.from(data)) }),
        );
      } catch (e) {
        conn.destroy();
        continue;
      }
      owner = conn;
      if (reply.length > 0 && conn.writable) conn.write(reply.length === 1 ? reply[0] : Buffer.concat(reply));
    }
    busy = false;
  }

  async function closed(conn) {
    for (let i = queue.length - 1; i >= 0; i--) if (queue[i].conn === conn) queue.splice(i, 1);
    if (owner === conn) {
      owner = null;
      // A transaction its client can no longer finish would hold every other connection.
      // (exec takes PGlite's query lock itself.)
      if (db.isInTransaction()) await db.exec('ROLLBACK').catch(() => undefined);
    }
    void pump();
  }

  const connections = new Set();
  const server = net.createServer((conn) => {
    connections.add(conn);
    conn.setNoDelay(true);
    let pending = Buffer.alloc(0);
    let started = false;
    const enqueue = (length) => {
      queue.push({ conn, bytes: pending.subarray(0, length) });
      pending = pending.subarray(length);
      void pump();
    };
    // The startup packet has no type byte (length, then a code); an SSL request may come first.
    const readStartup = () => {
      while (pending.length >= 8) {
        const length = pending.readInt32BE(0);
        if (pending.length < length) return;
        const code = pending.readInt32BE(4);
        if (code === CANCEL_REQUEST) return conn.destroy();
        if (code === SSL_REQUEST) {
          conn.write('N');
          pending = pending.subarray(length);
          continue;
        }
        started = true;
        return enqueue(length);
      }
    };
    conn.on('data', (data) => {
      pending = pending.length === 0 ? data : Buffer.concat([pending, data]);
      if (!started) readStartup();
      if (!started || conn.destroyed) return;
      // Whole messages are read up to 'end'; a job ends only where a request does ('cut'), so another
      // connection never runs between a Parse and its Sync (they share PGlite's unnamed statement).
      let end = 0;
      let cut = 0;
      let terminated = false;
      while (pending.length - end >= 5) {
        const type = pending[end];
        if (type === TERMINATE) {
          terminated = true;
          break;
        }
        const length = 1 + pending.readInt32BE(end + 1);
        if (pending.length - end < length) break;
        end += length;
        if (!EXTENDED_QUERY_STEPS.has(type)) cut = end;
      }
      if (cut > 0) enqueue(cut);
      if (terminated) {
        pending = Buffer.alloc(0);
        conn.end();
      }
    });
    conn.on('error', () => undefined);
    conn.on('close', () => {
      connections.delete(conn);
      void closed(conn);
    });
  });
  server.closeAll = () =>
    new Promise((resolve) => {
      server.close(() => resolve());
      for (const conn of connections) conn.destroy();
    });
  return server;
}

(async () => {
  const startParams = [...PGlite.defaultStartParams, ...workerData.settings.flatMap((s) => ['-c', s])];
  const db = await PGlite.create({ dataDir: workerData.dataDir, extensions: { pgcrypto }, startParams });
  const server = serve(db);
  await new Promise((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  parentPort.on('message', async (message) => {
    if (message !== 'stop') return;
    try {
      await server.closeAll();
      await db.close();
    } finally {
      parentPort.postMessage({ type: 'stopped' });
    }
  });
  parentPort.postMessage({ type: 'ready', port: server.address().port });
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
  { type: 'ready'; port: number } | { type: 'stopped' } | { type: 'error'; message: string };

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
        },
      },
    });
    const port = await new Promise<number>((resolveReady, reject) => {
      const onMessage = (message: WorkerMessage): void => {
        if (message.type === 'ready') resolveReady(message.port);
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

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createScratchDatabase, hasRedis } from '../utils/create-test-app.js';

const root = resolve(import.meta.dirname, '../..');
// Starting Nest from TypeScript sources, twice in a row, is slow on a busy machine.
const STARTUP_MS = 150_000;

interface Started {
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `node src/main.ts` as an operator would start it, from an empty folder (no .env file). */
function startParley(env: Record<string, string>): Started {
  const child = spawn(
    process.execPath,
    ['--import', join(root, 'scripts/register-ts.mjs'), join(root, 'src/main.ts')],
    {
      cwd: mkdtempSync(join(tmpdir(), 'parley-cluster-')),
      env: { PATH: process.env.PATH, HOST: '127.0.0.1', PORT: '0', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
    child.once('exit', (code, signal) => done({ code, signal })),
  );
  return { child, output: () => output, exited };
}

async function waitFor(
  what: string,
  started: Started,
  test: () => boolean,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!test()) {
    if (started.child.exitCode !== null) throw new Error(`exited waiting for ${what}:\n${started.output()}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${started.output()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A GET on a connection of its own: the cluster hands each new connection to the next worker. */
function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((done, fail) => {
    http
      .get(url, { agent: false, headers }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => done({ status: res.statusCode!, body }));
      })
      .on('error', fail);
  });
}

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('one process, LOG_FORMAT=json', () => {
  it(
    'writes every line as JSON, the listening line (with the HOST it listens on) included',
    async () => {
      const started = startParley({ LOG_FORMAT: 'json', LOG_LEVEL: 'warn', DATA_DIR: 'memory://' });
      try {
        await waitFor(
          'the listening line',
          started,
          () => started.output().includes('Parley listening on'),
          STARTUP_MS,
        );
        const lines = started
          .output()
          .split('\n')
          .filter((line) => line.trim() !== '');
        for (const line of lines) expect(() => JSON.parse(line) as unknown, line).not.toThrow();
        expect(lines.map((line) => JSON.parse(line) as { msg?: string })).toContainEqual(
          expect.objectContaining({
            msg: expect.stringMatching(/^Parley listening on http:\/\/127\.0\.0\.1:\d+ \(docs at \/docs\)$/),
          }),
        );
      } finally {
        started.child.kill('SIGKILL');
      }
    },
    STARTUP_MS + 10_000,
  );
});

describe('WORKERS above 1 without shared state', () => {
  it('refuses to start, naming the missing variable and why', async () => {
    const started = startParley({
      WORKERS: '2',
      DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none',
      REDIS_URL: '',
    });
    expect(await started.exited).toEqual({ code: 1, signal: null });
    expect(started.output()).toContain('Invalid configuration: WORKERS is 2');
    expect(started.output()).toContain('REDIS_URL unset');
    expect(started.output()).toContain('the in-process store and the embedded database cannot be shared');
    expect(started.output()).not.toContain('listening');
  });
});

describe.skipIf(!hasRedis || !process.env.DATABASE_URL)('WORKERS=2 on PostgreSQL and Redis', () => {
  let scratch: { url: string; drop: () => Promise<void> };
  let parley: Started;
  let url = '';
  const workerPids = (): number[] =>
    [...parley.output().matchAll(/Started worker (\d+)/g)].map((m) => Number(m[1]));
  const listeningLines = (): string[] =>
    parley
      .output()
      .split('\n')
      .filter((l) => l.includes('Parley listening on'));

  beforeAll(async () => {
    scratch = await createScratchDatabase(process.env.DATABASE_URL!);
    parley = startParley({
      WORKERS: '2',
      NODE_ENV: 'development',
      DATABASE_URL: scratch.url,
      REDIS_URL: process.env.REDIS_URL!,
      STORE_KEY_PREFIX: `parley-test-${randomBytes(4).toString('hex')}:`,
      SHUTDOWN_GRACE_MS: '1000',
    });
    await waitFor('the listening line', parley, () => listeningLines().length > 0, STARTUP_MS);
    url = `http://127.0.0.1:${/127\.0\.0\.1:(\d+)/.exec(listeningLines()[0])![1]}`;
  }, STARTUP_MS + 10_000);

  afterAll(async () => {
    if (parley?.child.exitCode === null) {
      parley.child.kill('SIGKILL');
      for (const pid of workerPids()) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    }
    await scratch?.drop();
  });

  it('says it is listening once, with the number of workers', () => {
    expect(listeningLines()).toEqual([
      expect.stringMatching(
        /^\[INFO\] Parley listening on http:\/\/127\.0\.0\.1:\d+ \(docs at \/docs\), 2 worker processes$/,
      ),
    ]);
    expect(workerPids()).toHaveLength(2);
    expect(parley.output().match(/Development token/g)).toHaveLength(1);
  });

  it('serves with both workers, which accept the same development token', async () => {
    const token = /Development token .*: (\S+)/.exec(parley.output())![1];
    const sent = 10;
    for (let i = 0; i < sent; i++) {
      const res = await get(`${url}/v1/models`, { authorization: `Bearer ${token}` });
      expect(res.status).toBe(200);
    }
    expect(workerPids().every(isAlive)).toBe(true);
    // Connections alternate between the workers; every scrape still counts all the requests.
    for (let i = 0; i < 4; i++) {
      const metrics = (await get(`${url}/metrics`)).body;
      const line = /parley_http_requests_total\{[^}]*route="\/v1\/models"[^}]*\} (\d+)/.exec(metrics);
      expect(Number(line?.[1])).toBe(sent);
    }
  });

  it(
    'keeps serving when a worker dies, and replaces it',
    async () => {
      const [first] = workerPids();
      process.kill(first, 'SIGKILL');
      await waitFor('the exit', parley, () => parley.output().includes(`Worker ${first} exited`), 10_000);
      // The other worker serves meanwhile.
      for (let i = 0; i < 4; i++) expect((await get(`${url}/health`)).status).toBe(200);
      await waitFor('a replacement', parley, () => parley.output().includes('is listening'), STARTUP_MS);
      expect(parley.output()).toContain(`Worker ${first} exited with signal SIGKILL; starting another`);
      expect(workerPids()).toHaveLength(3);
      for (let i = 0; i < 4; i++) expect((await get(`${url}/health`)).status).toBe(200);
    },
    STARTUP_MS + 20_000,
  );

  it('stops every worker on SIGTERM and exits with 0', async () => {
    parley.child.kill('SIGTERM');
    expect(await parley.exited).toEqual({ code: 0, signal: null });
    expect(parley.output()).toContain('SIGTERM: stopping 2 worker process(es)');
    for (const pid of workerPids()) expect(isAlive(pid)).toBe(false);
  }, 30_000);
});

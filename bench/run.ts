// Parley's benchmark: the same upstream simulator called directly and through Parley, in one run,
// non-streaming and streaming, at several concurrencies; plus sub-millisecond latency and time to
// first token measured by hand (autocannon's histogram has whole-millisecond resolution), the
// direct and Parley requests alternating.
//
//   npm run bench                 embedded defaults (PGlite, in-process store)
//   DATABASE_URL=... REDIS_URL=... npm run bench
//   npm run bench -- --write      also rewrites docs/benchmarks.md
import autocannon from 'autocannon';
import jwt from 'jsonwebtoken';
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const UPSTREAM_PORT = 4310;
const PARLEY_PORT = 4311;
const SECRET = 'bench-secret-0123456789abcdef0123456789';
const ADMIN = 'bench-admin-token';
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 5);
const CONCURRENCIES = (process.env.BENCH_CONCURRENCY ?? '1,16,64,256').split(',').map(Number);
const write = process.argv.includes('--write');
// A fresh tenant per run, so the harness can run again against the same database.
const TENANT = `bench-${Date.now().toString(36)}`;

/**
 * Starts a server with its output going to a file, as a production log would, rather than to a
 * pipe into this process: every log line read here would be work for the client being timed.
 */
function start(
  name: string,
  args: string[],
  env: Record<string, string>,
  ready: RegExp,
): Promise<ChildProcess> {
  const logPath = join(tmpdir(), `parley-bench-${name}-${process.pid}.log`);
  const log = openSync(logPath, 'w');
  const child = spawn(process.execPath, args, {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', log, log],
  });
  closeSync(log);
  const output = (): string => readFileSync(logPath, 'utf8');
  return new Promise((resolvePromise, reject) => {
    const onExit = (code: number | null): void => {
      clearInterval(poll);
      reject(new Error(`${name} exited with ${code}:\n${output()}`));
    };
    const poll = setInterval(() => {
      if (!ready.test(output())) return;
      clearInterval(poll);
      child.removeListener('exit', onExit);
      resolvePromise(child);
    }, 50);
    child.once('exit', onExit);
  });
}

/** A process and its descendants (the workers, when Parley runs with WORKERS > 1). */
function processTree(pid: number): number[] {
  let children: number[] = [];
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const listed = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
      if (listed) children = children.concat(listed.split(/\s+/).map(Number));
    }
  } catch {
    // The process ended meanwhile.
  }
  return [pid, ...children.flatMap(processTree)];
}

/** Resident memory of Parley, all its processes together. */
function rssMb(pid: number): number {
  let kb = 0;
  for (const each of processTree(pid)) {
    try {
      kb += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${each}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      // The process ended meanwhile.
    }
  }
  return Math.round(kb / 1024);
}

async function json(url: string, init: RequestInit): Promise<Record<string, unknown>> {
  const res = await fetch(url, init);
  const body = (await res.json()) as Record<string, unknown>;
  if (!res.ok) throw new Error(`${init.method} ${url}: ${res.status} ${JSON.stringify(body)}`);
  return body;
}

const percentile = (sorted: number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];

interface Target {
  url: string;
  headers: Record<string, string>;
}

/** One keep-alive connection per target, as a client that sends one request after the other. */
const agents = new Map<string, http.Agent>();

/**
 * One request timed with hrtime: its whole answer, or (streaming) its first data frame with a delta.
 * node:http rather than fetch: the client shares two cores with both servers, and fetch's own
 * work per request (0.3 to 0.5 ms here) spills into the next measurement.
 */
function timeOne(target: Target, body: string, firstFrame: boolean): Promise<number> {
  let agent = agents.get(target.url);
  if (!agent) agents.set(target.url, (agent = new http.Agent({ keepAlive: true, maxSockets: 1 })));
  return new Promise((resolvePromise, reject) => {
    const started = process.hrtime.bigint();
    const elapsed = (): number => Number(process.hrtime.bigint() - started) / 1e6;
    const req = http.request(target.url, { method: 'POST', headers: target.headers, agent }, (res) => {
      if (res.statusCode !== 200) reject(new Error(`${target.url}: ${res.statusCode}`));
      // Read to the end, as a client does: cancelling after the first token would also time a new
      // connection for every request and the gateway's handling of a client that went away.
      let first: number | undefined;
      let seen = '';
      res.on('data', (chunk: Buffer) => {
        if (!firstFrame || first !== undefined) return;
        seen += chunk.toString();
        if (/data: \{[^\n]*"delta"/.test(seen)) first = elapsed();
      });
      res.on('end', () => {
        if (!firstFrame) resolvePromise(elapsed());
        else if (first === undefined) reject(new Error(`${target.url}: no delta in the stream`));
        else resolvePromise(first);
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Sequential requests to each target, alternating between them so that both see the same machine
 * (a VM's speed drifts over seconds); p50/p99 per target.
 */
async function timeSequential(
  targets: Target[],
  body: string,
  count: number,
  firstFrame: boolean,
): Promise<{ p50: number; p99: number }[]> {
  const samples: number[][] = targets.map(() => []);
  for (let i = 0; i < count; i++) {
    for (const [k, target] of targets.entries()) samples[k].push(await timeOne(target, body, firstFrame));
  }
  return samples.map((each) => {
    each.sort((a, b) => a - b);
    return { p50: percentile(each, 50), p99: percentile(each, 99) };
  });
}

interface Row {
  mode: string;
  connections: number;
  directRps: number;
  parleyRps: number;
  directP50: number;
  parleyP50: number;
  directP99: number;
  parleyP99: number;
  errors: number;
  rssMb: number;
}

async function main(): Promise<void> {
  const upstream = await start(
    'upstream',
    ['--import', './scripts/register-ts.mjs', 'test/upstream-main.ts'],
    { UPSTREAM_PORT: String(UPSTREAM_PORT) },
    /listening/,
  );
  const parleyEnv: Record<string, string> = {
    PORT: String(PARLEY_PORT),
    HOST: '127.0.0.1',
    NODE_ENV: 'production',
    JWT_SECRET: SECRET,
    ADMIN_TOKEN: ADMIN,
    ENCRYPTION_KEY: 'a'.repeat(64),
    DATA_DIR: 'memory://',
    // Info, as in production: the per-request log line is part of the cost.
    LOG_LEVEL: 'info',
    DEFAULT_RATE_LIMIT_REQUESTS: '100000000',
  };
  const parley = await start('parley', ['dist/main.js'], parleyEnv, /listening/);
  const stop = (): void => {
    parley.kill('SIGTERM');
    upstream.kill('SIGTERM');
  };
  try {
    const base = `http://127.0.0.1:${PARLEY_PORT}`;
    const upstreamUrl = `http://127.0.0.1:${UPSTREAM_PORT}/v1`;
    const adminHeaders = { Authorization: `Bearer ${ADMIN}`, 'Content-Type': 'application/json' };
    await json(`${base}/admin/tenants`, {
      method: 'POST',
      headers: adminHeaders,
      // BENCH_QUOTA=off measures the path without token balances.
      body: JSON.stringify({
        id: TENANT,
        name: 'Bench',
        settings: { token_quota: process.env.BENCH_QUOTA !== 'off' },
      }),
    });
    await json(`${base}/admin/tenants/${TENANT}/providers`, {
      method: 'POST',
      headers: adminHeaders,
      body: JSON.stringify({
        name: 'sim',
        kind: 'chat_completions',
        base_url: upstreamUrl,
        api_key: 'sk-bench',
        default_model: 'sim-small',
        models: [{ id: 'sim-small', context_length: 128000 }],
      }),
    });
    await json(`${base}/admin/tenants/${TENANT}/members/bench-user`, {
      method: 'PUT',
      headers: adminHeaders,
      body: JSON.stringify({ role: 'member' }),
    });
    await json(`${base}/admin/tenants/${TENANT}/users/bench-user/balance`, {
      method: 'POST',
      headers: adminHeaders,
      body: JSON.stringify({ delta: 900_000_000_000, reason: 'benchmark' }),
    });
    const token = jwt.sign({ sub: 'bench-user', tenant_id: TENANT }, SECRET, {
      algorithm: 'HS256',
      expiresIn: '2h',
    });

    const body = (stream: boolean): string =>
      JSON.stringify({
        model: 'sim-small',
        stream,
        messages: [{ role: 'user', content: 'Say something short.' }],
      });
    const direct = {
      url: `${upstreamUrl}/chat/completions`,
      headers: { 'Content-Type': 'application/json', Authorization: 'Bearer sk-bench' },
    };
    const viaParley = {
      url: `${base}/v1/chat/completions`,
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
    };

    // Warm up both paths (JIT, connection pools, caches).
    for (const target of [direct, viaParley]) {
      await autocannon({ ...target, method: 'POST', body: body(false), connections: 16, duration: 2 });
    }

    const [latencyDirect, latencyParley] = await timeSequential(
      [direct, viaParley],
      body(false),
      2000,
      false,
    );
    const [ttftDirect, ttftParley] = await timeSequential([direct, viaParley], body(true), 2000, true);
    const latency = { direct: latencyDirect, parley: latencyParley };
    const ttft = { direct: ttftDirect, parley: ttftParley };

    const rows: Row[] = [];
    let peakRss = rssMb(parley.pid!);
    for (const stream of [false, true]) {
      for (const connections of CONCURRENCIES) {
        const run = (target: typeof direct) =>
          autocannon({ ...target, method: 'POST', body: body(stream), connections, duration: DURATION_S });
        const d = await run(direct);
        const p = await run(viaParley);
        const rss = rssMb(parley.pid!);
        peakRss = Math.max(peakRss, rss);
        rows.push({
          mode: stream ? 'stream' : 'json',
          connections,
          directRps: Math.round(d.requests.average),
          parleyRps: Math.round(p.requests.average),
          directP50: d.latency.p50,
          parleyP50: p.latency.p50,
          directP99: d.latency.p99,
          parleyP99: p.latency.p99,
          errors: p.errors + p.non2xx + p.timeouts,
          rssMb: rss,
        });
      }
    }

    const f = (n: number): string => n.toFixed(3);
    const lines = [
      `Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}; ` +
        `store: ${process.env.REDIS_URL ? 'Redis' : 'in-process'}, database: ${process.env.DATABASE_URL ? 'PostgreSQL' : 'PGlite'}, workers: ${process.env.WORKERS ?? '1'}; ` +
        `simulator, Parley and autocannon share the machine; ${DURATION_S} s per cell.`,
      '',
      '| sequential, 1 connection (ms) | direct p50 | Parley p50 | added p50 | direct p99 | Parley p99 |',
      '|---|---|---|---|---|---|',
      `| non-streaming latency | ${f(latency.direct.p50)} | ${f(latency.parley.p50)} | ${f(latency.parley.p50 - latency.direct.p50)} | ${f(latency.direct.p99)} | ${f(latency.parley.p99)} |`,
      `| time to first token | ${f(ttft.direct.p50)} | ${f(ttft.parley.p50)} | ${f(ttft.parley.p50 - ttft.direct.p50)} | ${f(ttft.direct.p99)} | ${f(ttft.parley.p99)} |`,
      '',
      '| mode | connections | direct req/s | Parley req/s | Parley/direct | direct p50 ms | Parley p50 ms | direct p99 ms | Parley p99 ms | Parley errors | Parley RSS MB |',
      '|---|---|---|---|---|---|---|---|---|---|---|',
      ...rows.map(
        (r) =>
          `| ${r.mode} | ${r.connections} | ${r.directRps} | ${r.parleyRps} | ${Math.round((100 * r.parleyRps) / Math.max(1, r.directRps))}% | ${r.directP50} | ${r.parleyP50} | ${r.directP99} | ${r.parleyP99} | ${r.errors} | ${r.rssMb} |`,
      ),
      '',
      `Peak Parley RSS: ${peakRss} MB.`,
    ];
    const table = lines.join('\n');
    process.stdout.write(`${table}\n`);
    if (write) {
      const doc = [
        '# Benchmarks',
        '',
        'Measured by `npm run bench` (`bench/run.ts`): the upstream simulator called directly and through',
        'Parley (auth on, embedded defaults unless noted), in one run. Sequential latencies are timed',
        'with `process.hrtime`; the throughput table comes from autocannon (whole-millisecond latencies).',
        '',
        `Run on ${new Date().toISOString().slice(0, 10)}.`,
        '',
        table,
        '',
      ].join('\n');
      writeFileSync(resolve(root, 'docs/benchmarks.md'), doc);
    }
  } finally {
    stop();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});

import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry } from 'prom-client';
import { ParleyLogger } from '../common/logging/parley-logger.js';
import type { AppConfig } from '../config/app-config.js';
import { RestartTracker } from './restart-policy.js';

/** What a worker sends the primary once its server accepts connections. */
interface ListeningMessage {
  type: 'parley:listening';
  port: number;
}

/** A worker asking the primary for every worker's metrics, and the answer. */
interface MetricsRequest {
  type: 'parley:metrics-request';
  id: number;
}
interface MetricsAnswer {
  type: 'parley:metrics';
  id: number;
  text?: string;
  error?: string;
}

/**
 * The development JWT secret the primary generated, handed to every worker: with one secret each,
 * a token printed by one worker would be refused by the others.
 */
const SHARED_SECRET_VARIABLE = 'PARLEY_CLUSTER_GENERATED_JWT_SECRET';

/** Beyond its two grace periods (streams, then the ledger flush): time for a worker to close. */
const SHUTDOWN_MARGIN_MS = 15_000;

/** Where a client reaches the server: `localhost` when it listens on every interface. */
function displayHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return 'localhost';
  return host.includes(':') ? `[${host}]` : host;
}

/**
 * Says the line people and scripts wait for, once whatever the number of processes, in the log's
 * format and whatever its level.
 */
function sayListening(config: AppConfig, port: number, workers: number): void {
  const processes = workers > 1 ? `, ${workers} worker processes` : '';
  new ParleyLogger(config.logFormat, 'info').log(
    `Parley listening on http://${displayHost(config.host)}:${port} (docs at /docs)${processes}`,
    'Parley',
  );
}

/** True in the process that should fork workers rather than serve. */
export function isClusterPrimary(config: AppConfig): boolean {
  return config.workers > 1 && cluster.isPrimary;
}

/** The configuration a process serves with: in a worker, with the primary's generated secret. */
export function serveConfig(config: AppConfig, env: NodeJS.ProcessEnv = process.env): AppConfig {
  const shared = env[SHARED_SECRET_VARIABLE];
  if (!cluster.isWorker || shared === undefined || !config.jwtSecretGenerated) return config;
  return { ...config, jwtSecret: shared };
}

/** Tells the primary (if any) that this worker is listening; alone, says the line itself. */
export function announceListening(config: AppConfig, port: number): void {
  if (cluster.isWorker) process.send?.({ type: 'parley:listening', port } satisfies ListeningMessage);
  else sayListening(config, port, 1);
}

function isMessage<T extends { type: string }>(message: unknown, type: T['type']): message is T {
  return typeof message === 'object' && message !== null && (message as { type?: unknown }).type === type;
}

let metricsRequests = 0;

/**
 * In a worker: the metrics of every worker, summed by the primary, so that a scrape, whichever
 * worker answers it, sees the whole instance rather than one process.
 */
export function requestClusterMetrics(timeoutMs = 10_000): Promise<string> {
  const id = ++metricsRequests;
  return new Promise((resolve, reject) => {
    const done = (): void => {
      clearTimeout(timer);
      process.off('message', onMessage);
    };
    const onMessage = (message: unknown): void => {
      if (!isMessage<MetricsAnswer>(message, 'parley:metrics') || message.id !== id) return;
      done();
      if (message.text !== undefined) resolve(message.text);
      else reject(new Error(message.error ?? 'no metrics'));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`the cluster primary did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    process.on('message', onMessage);
    process.send!({ type: 'parley:metrics-request', id } satisfies MetricsRequest);
  });
}

/**
 * The primary: forks `config.workers` processes that each run the whole app on the same port,
 * replaces those that die, and forwards SIGTERM/SIGINT so each one shuts down gracefully.
 * The first worker starts alone, so migrations and the development bootstrap run once.
 */
export function runPrimary(config: AppConfig): void {
  const logger = new ParleyLogger(config.logFormat, config.logLevel);
  const restarts = new RestartTracker();
  const workers = new Set<Worker>();
  const listeningSince = new Map<Worker, number>();
  const env =
    config.jwtSecretGenerated && config.jwtSecret ? { [SHARED_SECRET_VARIABLE]: config.jwtSecret } : {};
  let restForked = false;
  let announced = false;
  let stopping = false;
  let exitCode = 0;

  const fork = (): void => {
    const worker = cluster.fork(env);
    workers.add(worker);
    logger.log(`Started worker ${worker.process.pid}`, 'Cluster');
  };
  const exitText = (worker: Worker, code: number | null, signal: string | null): string =>
    `Worker ${worker.process.pid ?? worker.id} exited with ${signal ? `signal ${signal}` : `code ${code}`}`;

  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    if (workers.size === 0) process.exit(exitCode);
    logger.log(`${signal}: stopping ${workers.size} worker process(es)`, 'Cluster');
    for (const worker of workers) worker.process.kill(signal);
    setTimeout(
      () => {
        logger.error(`Worker processes still running after the shutdown grace; killing them`, 'Cluster');
        exitCode = 1;
        for (const worker of workers) worker.process.kill('SIGKILL');
      },
      2 * config.shutdownGraceMs + SHUTDOWN_MARGIN_MS,
    ).unref();
  };

  const metrics = new AggregatorRegistry();
  cluster.on('message', (worker, message: unknown) => {
    if (isMessage<MetricsRequest>(message, 'parley:metrics-request')) {
      const answer = (fields: Partial<MetricsAnswer>): void => {
        if (worker.isConnected()) worker.send({ type: 'parley:metrics', id: message.id, ...fields });
      };
      metrics.clusterMetrics().then(
        (text) => answer({ text }),
        (e: Error) => answer({ error: e.message }),
      );
      return;
    }
    if (!isMessage<ListeningMessage>(message, 'parley:listening') || stopping) return;
    listeningSince.set(worker, Date.now());
    restarts.listening();
    if (!restForked) {
      restForked = true;
      for (let i = 1; i < config.workers; i++) fork();
    }
    if (announced) {
      logger.log(`Worker ${worker.process.pid} is listening`, 'Cluster');
    } else if (listeningSince.size === config.workers) {
      announced = true;
      sayListening(config, message.port, config.workers);
    }
  });

  cluster.on('exit', (worker, code, signal) => {
    const since = listeningSince.get(worker);
    workers.delete(worker);
    listeningSince.delete(worker);
    if (stopping) {
      // A worker shut down by the forwarded signal re-raises it once its hooks have run.
      const clean = code === 0 || signal === 'SIGTERM' || signal === 'SIGINT';
      if (!clean) {
        exitCode = 1;
        logger.error(`${exitText(worker, code, signal)} while stopping`, 'Cluster');
      }
      if (workers.size === 0) process.exit(exitCode);
      return;
    }
    const decision = restarts.exited({ at: Date.now(), listeningSince: since });
    if (decision.action === 'replace') {
      logger.error(`${exitText(worker, code, signal)}; starting another`, 'Cluster');
      fork();
      return;
    }
    logger.error(`${exitText(worker, code, signal)}; giving up: ${decision.reason}`, 'Cluster');
    exitCode = 1;
    stop('SIGTERM');
  });

  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  logger.log(`Starting ${config.workers} worker processes, the first one alone`, 'Cluster');
  fork();
}

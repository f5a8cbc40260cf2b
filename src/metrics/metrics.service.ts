import { Injectable } from '@nestjs/common';
import cluster from 'node:cluster';
import { AggregatorRegistry, collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';
import { requestClusterMetrics } from '../cluster/cluster.js';
import { ParleyError } from '../common/errors/parley-error.js';

/** One registry per app instance, so two instances in one process (tests) never collide. */
@Injectable()
export class MetricsService {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'parley_http_requests_total',
    help: 'HTTP requests answered, by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });
  readonly latency = new Histogram({
    name: 'parley_http_request_duration_seconds',
    help: 'Time to the end of the answer, by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });
  readonly upstreamErrors = new Counter({
    name: 'parley_upstream_errors_total',
    help: 'Failed upstream calls, by error code',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    if (cluster.isWorker) {
      // In a cluster, the primary collects this registry from every worker for each scrape;
      // constructing an AggregatorRegistry is how prom-client starts answering it.
      AggregatorRegistry.setRegistries([this.registry]);
      new AggregatorRegistry();
    }
  }

  /** What a scrape returns: this process's metrics or, in a cluster, those of all the workers. */
  async scrape(): Promise<string> {
    if (!cluster.isWorker) return this.registry.metrics();
    try {
      return await requestClusterMetrics();
    } catch (e) {
      throw new ParleyError(
        'service_unavailable',
        `Metrics of the worker processes: ${(e as Error).message}`,
      );
    }
  }

  observeRequest(method: string, route: string, status: number, seconds: number): void {
    const labels = { method, route, status: String(status) };
    this.requests.inc(labels);
    this.latency.observe(labels, seconds);
  }
}

import { Injectable, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance } from 'fastify';
import { MetricsService } from './metrics.service.js';

/**
 * Counts every answer, labelled by the matched route pattern (not the raw path, which has ids).
 * It listens on the raw response, because streamed and hijacked answers never reach Fastify's
 * own response hooks.
 */
@Injectable()
export class HttpMetricsHook implements OnModuleInit {
  constructor(
    private readonly adapterHost: HttpAdapterHost,
    private readonly metrics: MetricsService,
  ) {}

  onModuleInit(): void {
    const fastify = this.adapterHost.httpAdapter.getInstance<FastifyInstance>();
    fastify.addHook('onRequest', (request, reply, done) => {
      const started = process.hrtime.bigint();
      reply.raw.once('close', () => {
        const route = request.routeOptions.url ?? 'unmatched';
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        this.metrics.observeRequest(request.method, route, reply.raw.statusCode, seconds);
      });
      done();
    });
  }
}

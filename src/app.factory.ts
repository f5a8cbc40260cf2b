import type { DynamicModule, Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { AppModule } from './app.module.js';
import { OpenAiErrorFilter } from './common/errors/openai-error.filter.js';
import { registerJsonBodies, registerRequestIds } from './common/http/http-hooks.js';
import { ParleyLogger } from './common/logging/parley-logger.js';
import type { AppConfig } from './config/app-config.js';

export interface CreateAppOptions {
  /** Where log lines go (tests capture them); stdout by default. */
  logSink?: (line: string) => void;
  /** More modules to load beside Parley's own (a team's tools, say). */
  extraModules?: Array<Type | DynamicModule>;
}

/** Builds the whole gateway: used by main.ts and by the end-to-end tests alike. */
export async function createParleyApp(
  config: AppConfig,
  options: CreateAppOptions = {},
): Promise<NestFastifyApplication> {
  const logger = new ParleyLogger(config.logFormat, config.logLevel, options.logSink);
  // Fastify rather than Express: on the hot path the framework's own cost per request is a
  // third of Express's (see docs/benchmarks.md).
  const adapter = new FastifyAdapter({
    bodyLimit: config.bodyLimitBytes,
    // Paths as forgiving as Express's: a trailing slash or other letter case finds the route.
    routerOptions: { ignoreTrailingSlash: true, caseSensitive: false, maxParamLength: 512 },
  });
  const fastify = adapter.getInstance();
  registerJsonBodies(fastify, config.bodyLimitBytes);
  registerRequestIds(fastify);
  const app = await NestFactory.create<NestFastifyApplication>(
    AppModule.forRoot(config, options.extraModules),
    adapter,
    {
      logger,
      bodyParser: false,
      abortOnError: false,
    },
  );
  app.useGlobalFilters(new OpenAiErrorFilter());
  app.enableShutdownHooks();

  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('Parley')
      .setDescription('Multi-tenant, OpenAI-compatible chat-completions gateway.')
      .setVersion('0.1.0')
      .addBearerAuth({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' })
      .build(),
  );
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'docs-json', raw: ['json'] });
  return app;
}

/** Starts the HTTP server with a large backlog: Node's default (511) drops connections in a burst. */
export async function listen(app: NestFastifyApplication, port: number, host = '127.0.0.1'): Promise<number> {
  await app.listen({ port, host, backlog: 4096 });
  const address = app.getHttpServer().address();
  return typeof address === 'object' && address !== null ? address.port : port;
}

import type { DynamicModule, Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { AppModule } from './app.module.js';
import { OpenAiErrorFilter } from './common/errors/openai-error.filter.js';
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
): Promise<NestExpressApplication> {
  const logger = new ParleyLogger(config.logFormat, config.logLevel, options.logSink);
  const app = await NestFactory.create<NestExpressApplication>(
    AppModule.forRoot(config, options.extraModules),
    {
      logger,
      bodyParser: false,
      abortOnError: false,
    },
  );
  app.set('x-powered-by', false);
  app.set('etag', false);
  app.useBodyParser('json', { limit: config.bodyLimitBytes });
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
export async function listen(app: NestExpressApplication, port: number, host = '127.0.0.1'): Promise<number> {
  await app.init();
  const server = app.getHttpServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, backlog: 4096 }, () => resolve());
  });
  const address = server.address();
  return typeof address === 'object' && address !== null ? address.port : port;
}

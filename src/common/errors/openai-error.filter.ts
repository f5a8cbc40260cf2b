import { ArgumentsHost, Catch, ExceptionFilter, Logger } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { sendError } from '../http/send-json.js';
import { toParleyError } from './to-parley-error.js';

/** Every error a request throws becomes OpenAI's envelope (`sendError`), never a stack trace. */
@Catch()
export class OpenAiErrorFilter implements ExceptionFilter {
  private readonly logger = new Logger('Errors');

  catch(exception: unknown, host: ArgumentsHost): void {
    const error = toParleyError(exception);
    if (error.status === 500) {
      const cause = error.cause ?? exception;
      const detail = cause instanceof Error && cause !== error ? ` (${cause.stack ?? cause.message})` : '';
      this.logger.error(`${error.code}: ${error.message}${detail}`);
    } else if (error.status > 500) {
      this.logger.warn(`${error.code}: ${error.message}`);
    }
    const reply = host.switchToHttp().getResponse<FastifyReply>();
    if (reply.raw.headersSent) {
      // A stream already started: the SSE writer owns the answer; just make sure it ends.
      if (!reply.raw.writableEnded) reply.raw.end();
      return;
    }
    sendError(reply, error);
  }
}

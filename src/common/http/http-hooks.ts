import type { FastifyInstance } from 'fastify';
import { randomUUID } from 'node:crypto';
import { ParleyError } from '../errors/parley-error.js';

const ACCEPTABLE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const BLANK = /^\s*$/;

/**
 * The body of a request whose body is not JSON. Parsing happens before the guards; answering
 * `invalid_json` there would tell a caller without a token (or over its rate limit) about its body
 * first. So the body becomes this marker, and whatever reads the body answers `invalid_json`
 * (`unparsableBody`) once the guards have let the request through.
 */
export const UNPARSABLE_BODY: unique symbol = Symbol('unparsable JSON body');

export function unparsableBody(): ParleyError {
  return new ParleyError('invalid_json', 'The request body is not valid JSON.');
}

/**
 * Every body is read as JSON, whatever its Content-Type: many clients send a JSON body with no
 * type or a form type (curl -d), and OpenAI's API reads those too. An empty body is no body, so
 * a DELETE with `Content-Type: application/json` and nothing else is not an error.
 */
export function registerJsonBodies(fastify: FastifyInstance, bodyLimit: number): void {
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser('*', { parseAs: 'string', bodyLimit }, (_request, body, done) => {
    const text = body as string;
    if (BLANK.test(text)) {
      done(null, undefined);
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      done(null, UNPARSABLE_BODY);
      return;
    }
    done(null, parsed);
  });
}

/** Every answer carries `x-request-id`: the caller's own when it sent a sane one, else a new one. */
export function registerRequestIds(fastify: FastifyInstance): void {
  fastify.addHook('onRequest', (request, reply, done) => {
    const incoming = request.headers['x-request-id'];
    const id = typeof incoming === 'string' && ACCEPTABLE_REQUEST_ID.test(incoming) ? incoming : randomUUID();
    // On the raw response, so that answers written past Fastify (SSE, hijacked JSON) carry it too.
    reply.raw.setHeader('x-request-id', id);
    done();
  });
}

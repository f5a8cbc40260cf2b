import type { FastifyReply } from 'fastify';
import { errorEnvelope, type ParleyError } from '../errors/parley-error.js';

/**
 * Writes a JSON answer straight to the socket, past Fastify's serializer and reply hooks: the
 * hot path's answers are already plain objects, and headers set earlier on the raw response
 * (request id, rate limits) go out with it.
 */
export function sendJson(
  reply: FastifyReply,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (!reply.sent) reply.hijack();
  const res = reply.raw;
  const json = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(json),
  });
  res.end(json);
}

/** An error as OpenAI's envelope, with its status and headers (after `headers`, which it may override). */
export function sendError(
  reply: FastifyReply,
  error: ParleyError,
  headers: Record<string, string> = {},
): void {
  sendJson(reply, error.status, errorEnvelope(error.toBody()), { ...headers, ...error.headers });
}

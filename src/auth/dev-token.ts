import { createHmac } from 'node:crypto';

function b64url(value: object): string {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
}

/** Signs an HS256 JWT (the development token printed at start-up when JWT_SECRET is unset). */
export function signHs256(payload: Record<string, unknown>, secret: string): string {
  const unsigned = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url(payload)}`;
  const signature = createHmac('sha256', Buffer.from(secret, 'utf8')).update(unsigned).digest('base64url');
  return `${unsigned}.${signature}`;
}

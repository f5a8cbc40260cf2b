import { ParleyError } from '../common/errors/parley-error.js';

/** 401 `invalid_token`, with the challenge header OAuth bearer clients expect. */
export function invalidToken(reason: string): ParleyError {
  return new ParleyError('invalid_token', `Invalid authentication token: ${reason}.`, {
    headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' },
  });
}

export function missingToken(): ParleyError {
  return new ParleyError('invalid_token', 'Missing bearer token: send "Authorization: Bearer <token>".', {
    headers: { 'WWW-Authenticate': 'Bearer' },
  });
}

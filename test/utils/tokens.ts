import jwt from 'jsonwebtoken';
import { TEST_ADMIN_TOKEN, TEST_JWT_SECRET } from './create-test-app.js';

export interface TestClaims {
  sub?: string;
  tenant_id?: string;
  tenants?: string[];
  role?: string;
  [claim: string]: unknown;
}

/** An HS256 token signed with the test apps' JWT_SECRET, valid for an hour unless `exp` is given. */
export function userToken(claims: TestClaims, options: jwt.SignOptions = {}): string {
  const payload = { ...claims };
  return jwt.sign(payload, TEST_JWT_SECRET, {
    algorithm: 'HS256',
    ...(payload.exp === undefined ? { expiresIn: 3600 } : {}),
    ...options,
  });
}

export function bearer(token: string): { Authorization: string } {
  return { Authorization: `Bearer ${token}` };
}

/** The static admin token of the test apps. */
export const adminAuth = bearer(TEST_ADMIN_TOKEN);

import { describe, expect, it } from 'vitest';
import { InvalidClaimsError, parseClaims } from './jwt-claims.js';

describe('parseClaims', () => {
  it('keeps the claims Parley reads', () => {
    expect(
      parseClaims({ sub: 'u1', tenant_id: 't1', tenants: ['t1', 't2'], role: 'admin', exp: 10, iat: 1 }),
    ).toEqual({
      sub: 'u1',
      tenant_id: 't1',
      tenants: ['t1', 't2'],
      role: 'admin',
      exp: 10,
    });
  });

  it('accepts a sub of exactly 255 characters', () => {
    expect(parseClaims({ sub: 'x'.repeat(255) }).sub).toHaveLength(255);
  });

  it.each([
    ['no sub', {}],
    ['empty sub', { sub: '' }],
    ['numeric sub', { sub: 42 }],
    ['sub over 255', { sub: 'x'.repeat(256) }],
    ['tenant_id not a string', { sub: 'u', tenant_id: 5 }],
    ['tenants not an array', { sub: 'u', tenants: 't1' }],
    ['tenants with a number', { sub: 'u', tenants: ['t1', 2] }],
    ['role not a string', { sub: 'u', role: ['admin'] }],
    ['not an object', 'sub'],
    ['an array', [{ sub: 'u' }]],
  ])('refuses %s', (_name, payload) => {
    expect(() => parseClaims(payload)).toThrow(InvalidClaimsError);
  });
});

import { describe, expect, it } from 'vitest';
import { extractBearerToken } from './bearer-token.js';

describe('extractBearerToken', () => {
  it.each([
    ['Bearer abc.def.ghi', 'abc.def.ghi'],
    ['bearer abc', 'abc'],
    ['BEARER   abc  ', 'abc'],
    [undefined, null],
    ['', null],
    ['Bearer', null],
    ['Bearer ', null],
    ['Basic dXNlcjpwYXNz', null],
    ['Bearer a b', null],
    ['Token abc', null],
  ])('%j -> %j', (header, expected) => {
    expect(extractBearerToken(header)).toBe(expected);
  });
});

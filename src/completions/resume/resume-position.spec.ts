import { describe, expect, it } from 'vitest';
import { resumePosition } from './resume-position.js';

describe('resumePosition', () => {
  it('starts from the beginning without a position', () => {
    expect(resumePosition(undefined, undefined)).toBe(0);
    expect(resumePosition('', undefined)).toBe(0);
  });

  it('reads Last-Event-ID first, then ?after=', () => {
    expect(resumePosition('7', undefined)).toBe(7);
    expect(resumePosition(' 12 ', '3')).toBe(12);
    expect(resumePosition(undefined, '3')).toBe(3);
    expect(resumePosition(undefined, '0')).toBe(0);
  });

  it.each([
    ['-1', undefined, 'Last-Event-ID'],
    ['1.5', undefined, 'Last-Event-ID'],
    ['abc', '2', 'Last-Event-ID'],
    ['1e3', undefined, 'Last-Event-ID'],
    ['9999999999999999', undefined, 'Last-Event-ID'],
    [undefined, '', 'after'],
    [undefined, 'x', 'after'],
    [undefined, ['1', '2'], 'after'],
  ])('rejects %j / %j with invalid_value on %s', (header, after, param) => {
    expect(() => resumePosition(header, after)).toThrow(
      expect.objectContaining({ status: 400, code: 'invalid_value', param }),
    );
  });
});

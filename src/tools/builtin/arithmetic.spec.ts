import { describe, expect, it } from 'vitest';
import { evaluate, ExpressionError, MAX_EXPRESSION_LENGTH, roundForDisplay } from './arithmetic.js';

function errorOf(expression: string): ExpressionError {
  try {
    evaluate(expression);
  } catch (error) {
    if (error instanceof ExpressionError) return error;
    throw error;
  }
  throw new Error(`"${expression}" did not fail`);
}

describe(evaluate.name, () => {
  const sut = evaluate;

  it.each([
    // numbers
    ['42', 42],
    ['3.25', 3.25],
    ['.5', 0.5],
    ['2.', 2],
    ['1e3', 1000],
    ['2.5E-2', 0.025],
    ['1e+2', 100],
    ['  7  ', 7],
    // precedence
    ['1 + 2 * 3', 7],
    ['(1 + 2) * 3', 9],
    ['10 - 4 / 2', 8],
    ['2 * 3 ^ 2', 18],
    ['2 + 10 % 4', 4],
    ['1 + 2 * 3 ^ 2 - 4 / 2', 17],
    // associativity
    ['10 - 3 - 2', 5],
    ['100 / 10 / 5', 2],
    ['2 ^ 3 ^ 2', 512],
    ['2 ** 3 ** 2', 512],
    ['(2 ^ 3) ^ 2', 64],
    ['17 % 5 % 3', 2],
    ['8 / 4 * 2', 4],
    // unary
    ['-5', -5],
    ['--5', 5],
    ['+5', 5],
    ['-2 ^ 2', -4],
    ['(-2) ^ 2', 4],
    ['2 ^ -1', 0.5],
    ['3 - -2', 5],
    ['-(1 + 2) * 3', -9],
    ['2 * -3', -6],
    // parentheses
    ['((((1))))', 1],
    ['(1 + (2 * (3 + 4)))', 15],
    // decimals and modulo
    ['0.1 * 3', 0.30000000000000004],
    ['7.5 % 2', 1.5],
    ['-7 % 3', -1],
    ['7 % -3', 1],
    ['1 / 3 * 3', 1],
    ['4 ^ 0.5', 2],
    ['0 ^ 0', 1],
    ['-0', 0],
    ['\t1\n+\n2', 3],
  ])('%s = %d', (expression, expected) => {
    expect(sut(expression)).toBe(expected);
  });

  it.each([
    ['1 / 0', 'division by zero at position 3', 3],
    ['5 % (2 - 2)', 'modulo by zero at position 3', 3],
    ['0 ^ -1', 'division by zero at position 3 (0 to a negative power)', 3],
    ['1 + )', "unexpected token ')' at position 5, expected a number or (", 5],
    ['1 +', 'unexpected end of expression at position 4, expected a number or (', 4],
    ['2 3', "unexpected token '3' at position 3", 3],
    ['(1 + 2', "missing ')' at position 7 to close '(' at position 1", 7],
    ['(1 + 2 3)', "unexpected token '3' at position 8, expected ')' to close '(' at position 1", 8],
    ['1 + 2)', "unexpected token ')' at position 6", 6],
    ['()', "unexpected token ')' at position 2, expected a number or (", 2],
    ['1.2.3', "unexpected token '.3' at position 4", 4],
    ['2(3)', "unexpected token '(' at position 2", 2],
    ['1 * * 2', "unexpected token '*' at position 5, expected a number or (", 5],
    ['1e', "unexpected character 'e' at position 2", 2],
    ['1,000', "unexpected character ',' at position 2", 2],
    ['x + 1', "unexpected character 'x' at position 1", 1],
    ['1 + 😀', "unexpected character '😀' at position 5", 5],
    ['(-8) ^ (1/3)', "'^' at position 6 has no real-number result", 6],
    ['10 ^ 400', "result of '^' at position 4 is too large", 4],
    ['1e308 * 10', "result of '*' at position 7 is too large", 7],
    ['1e400', 'number 1e400 is too large at position 1', 1],
  ])('rejects %s: %s', (expression, message, position) => {
    const error = errorOf(expression);
    expect(error.message).toBe(message);
    expect(error.position).toBe(position);
  });

  it.each([
    ['process.exit()'],
    ['constructor'],
    ['this.constructor.constructor("return process")()'],
    ['require("child_process")'],
    ['__proto__'],
    ['1; process.exit(1)'],
    ['`${1}`'],
    ['[1, 2]'],
    ['"1" + 1'],
    ['Infinity'],
    ['NaN'],
    ['Math.PI'],
    ['globalThis'],
    ['1 + 1 // comment'],
  ])('rejects code: %s', (expression) => {
    expect(() => sut(expression)).toThrow(ExpressionError);
  });

  it('names the first character of an identifier', () => {
    expect(errorOf('process.exit()').message).toBe("unexpected character 'p' at position 1");
    expect(errorOf('2 * constructor').message).toBe("unexpected character 'c' at position 5");
  });

  it('rejects an empty expression', () => {
    expect(errorOf('').message).toBe('expression is empty');
    expect(errorOf('   ').message).toBe('expression is empty');
  });

  it(`rejects an expression longer than ${MAX_EXPRESSION_LENGTH} characters, before parsing it`, () => {
    const tooLong = '1+'.repeat(500) + '1';
    expect(errorOf(tooLong).message).toBe('expression too long: 1001 characters, at most 1000 allowed');
    expect(sut('1+'.repeat(499) + '1')).toBe(500);
  });

  it('rejects nesting deeper than the limit, in parentheses, unary signs and powers', () => {
    expect(sut('('.repeat(99) + '1' + ')'.repeat(99))).toBe(1);
    expect(errorOf('('.repeat(150) + '1' + ')'.repeat(150)).message).toMatch(
      /^nesting too deep at position 101 \(at most 100 levels\)$/,
    );
    expect(errorOf('-'.repeat(200) + '1').message).toMatch(/^nesting too deep/);
    expect(errorOf(Array(150).fill('1').join('^')).message).toMatch(/^nesting too deep/);
    expect(() => sut('(1)', { maxDepth: 1 })).toThrow(/nesting too deep/);
  });

  it('honours a custom length limit', () => {
    expect(() => sut('1 + 1', { maxLength: 3 })).toThrow(
      'expression too long: 5 characters, at most 3 allowed',
    );
  });
});

describe(roundForDisplay.name, () => {
  const sut = roundForDisplay;

  it.each([
    [0.1 + 0.2, 0.3],
    [1 / 3, 0.333333333333333],
    [2 ** 53, 2 ** 53],
    [123456789012345680000, 123456789012345680000],
    [-0.1 - 0.2, -0.3],
    [1.5, 1.5],
    [1e-20, 1e-20],
  ])('%d -> %d', (value, expected) => {
    expect(sut(value)).toBe(expected);
  });
});

/**
 * A small arithmetic evaluator: a tokenizer plus a recursive-descent parser that computes as it
 * parses. Pure, no Nest, no IO, and never `eval`/`Function`: the only things it understands are
 * numbers, `+ - * / % ^` (`**` as an alias of `^`), unary `+`/`-` and parentheses. Anything else
 * (identifiers, `;`, quotes, brackets) is an "unexpected character" error.
 *
 * Grammar, lowest precedence first:
 *
 *     expression     := additive EOF
 *     additive       := multiplicative (('+' | '-') multiplicative)*
 *     multiplicative := unary (('*' | '/' | '%') unary)*
 *     unary          := ('+' | '-') unary | power
 *     power          := primary ('^' unary)?          right-associative: 2^3^2 = 2^9
 *     primary        := NUMBER | '(' additive ')'
 *
 * So `-2^2` is `-(2^2)` = -4 (as in mathematics), `2^-1` is 0.5, and `%` is the remainder with
 * the sign of the dividend (as in JavaScript, C and Java): `-7 % 3` = -1.
 *
 * Positions in error messages are 1-based character columns of the expression.
 */

export const MAX_EXPRESSION_LENGTH = 1000;
export const MAX_NESTING_DEPTH = 100;

export class ExpressionError extends Error {
  constructor(
    message: string,
    /** 1-based column the error points at; undefined for errors about the whole expression. */
    readonly position?: number,
  ) {
    super(message);
    this.name = 'ExpressionError';
  }
}

export interface EvaluateOptions {
  maxLength?: number;
  maxDepth?: number;
}

type Operator = '+' | '-' | '*' | '/' | '%' | '^';

type Token =
  | { kind: 'number'; value: number; text: string; pos: number }
  | { kind: 'operator'; op: Operator; text: string; pos: number }
  | { kind: '(' | ')'; text: string; pos: number }
  | { kind: 'end'; text: ''; pos: number };

const NUMBER = /(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/y;
const WHITESPACE = /\s/;

function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < source.length) {
    const ch = source[i];
    if (WHITESPACE.test(ch)) {
      i++;
      continue;
    }
    const pos = i + 1;
    if (ch === '*' && source[i + 1] === '*') {
      tokens.push({ kind: 'operator', op: '^', text: '**', pos });
      i += 2;
      continue;
    }
    if (ch === '+' || ch === '-' || ch === '*' || ch === '/' || ch === '%' || ch === '^') {
      tokens.push({ kind: 'operator', op: ch, text: ch, pos });
      i++;
      continue;
    }
    if (ch === '(' || ch === ')') {
      tokens.push({ kind: ch, text: ch, pos });
      i++;
      continue;
    }
    NUMBER.lastIndex = i;
    const match = NUMBER.exec(source);
    if (match) {
      const text = match[0];
      const value = Number(text);
      if (!Number.isFinite(value))
        throw new ExpressionError(`number ${text} is too large at position ${pos}`, pos);
      tokens.push({ kind: 'number', value, text, pos });
      i += text.length;
      continue;
    }
    // Code point, not code unit, so an emoji is reported whole.
    const char = String.fromCodePoint(source.codePointAt(i) ?? 0);
    throw new ExpressionError(`unexpected character '${char}' at position ${pos}`, pos);
  }
  tokens.push({ kind: 'end', text: '', pos: source.length + 1 });
  return tokens;
}

class Parser {
  private index = 0;
  private depth = 0;

  constructor(
    private readonly tokens: Token[],
    private readonly maxDepth: number,
  ) {}

  parse(): number {
    const value = this.additive();
    const next = this.peek();
    if (next.kind !== 'end') throw this.unexpected(next);
    return value;
  }

  private additive(): number {
    let left = this.multiplicative();
    for (;;) {
      const token = this.peek();
      if (token.kind !== 'operator' || (token.op !== '+' && token.op !== '-')) return left;
      this.index++;
      const right = this.multiplicative();
      left = checked(token.op === '+' ? left + right : left - right, token);
    }
  }

  private multiplicative(): number {
    let left = this.unary();
    for (;;) {
      const token = this.peek();
      if (token.kind !== 'operator' || (token.op !== '*' && token.op !== '/' && token.op !== '%'))
        return left;
      this.index++;
      const right = this.unary();
      if (token.op === '*') {
        left = checked(left * right, token);
      } else if (right === 0) {
        const what = token.op === '/' ? 'division' : 'modulo';
        throw new ExpressionError(`${what} by zero at position ${token.pos}`, token.pos);
      } else {
        left = checked(token.op === '/' ? left / right : left % right, token);
      }
    }
  }

  private unary(): number {
    const token = this.peek();
    if (++this.depth > this.maxDepth) {
      throw new ExpressionError(
        `nesting too deep at position ${token.pos} (at most ${this.maxDepth} levels)`,
        token.pos,
      );
    }
    try {
      if (token.kind === 'operator' && (token.op === '-' || token.op === '+')) {
        this.index++;
        const operand = this.unary();
        return token.op === '-' ? -operand : operand;
      }
      return this.power();
    } finally {
      this.depth--;
    }
  }

  private power(): number {
    const base = this.primary();
    const token = this.peek();
    if (token.kind !== 'operator' || token.op !== '^') return base;
    this.index++;
    const exponent = this.unary();
    if (base === 0 && exponent < 0) {
      throw new ExpressionError(
        `division by zero at position ${token.pos} (0 to a negative power)`,
        token.pos,
      );
    }
    return checked(base ** exponent, token);
  }

  private primary(): number {
    const token = this.next();
    if (token.kind === 'number') return token.value;
    if (token.kind === '(') {
      const value = this.additive();
      const close = this.next();
      if (close.kind !== ')') {
        throw close.kind === 'end'
          ? new ExpressionError(
              `missing ')' at position ${close.pos} to close '(' at position ${token.pos}`,
              close.pos,
            )
          : this.unexpected(close, `expected ')' to close '(' at position ${token.pos}`);
      }
      return value;
    }
    throw this.unexpected(token, 'expected a number or (');
  }

  private unexpected(token: Token, expected?: string): ExpressionError {
    const hint = expected ? `, ${expected}` : '';
    if (token.kind === 'end') {
      return new ExpressionError(`unexpected end of expression at position ${token.pos}${hint}`, token.pos);
    }
    return new ExpressionError(`unexpected token '${token.text}' at position ${token.pos}${hint}`, token.pos);
  }

  private peek(): Token {
    return this.tokens[this.index];
  }

  private next(): Token {
    const token = this.tokens[this.index];
    if (token.kind !== 'end') this.index++;
    return token;
  }
}

function checked(value: number, at: { pos: number; text: string }): number {
  if (Number.isNaN(value)) {
    throw new ExpressionError(`'${at.text}' at position ${at.pos} has no real-number result`, at.pos);
  }
  if (!Number.isFinite(value)) {
    throw new ExpressionError(`result of '${at.text}' at position ${at.pos} is too large`, at.pos);
  }
  return value;
}

/**
 * Evaluates an arithmetic expression to a finite IEEE-754 double. Throws ExpressionError with a
 * message fit to show a model or a user.
 */
export function evaluate(expression: string, options: EvaluateOptions = {}): number {
  const maxLength = options.maxLength ?? MAX_EXPRESSION_LENGTH;
  const maxDepth = options.maxDepth ?? MAX_NESTING_DEPTH;
  if (expression.length > maxLength) {
    throw new ExpressionError(
      `expression too long: ${expression.length} characters, at most ${maxLength} allowed`,
    );
  }
  if (expression.trim() === '') throw new ExpressionError('expression is empty');
  const value = new Parser(tokenize(expression), maxDepth).parse();
  return value === 0 ? 0 : value; // no -0
}

/**
 * Rounds away binary floating-point noise for display (0.1 + 0.2 gives 0.3, not
 * 0.30000000000000004) by keeping 15 significant digits, the precision a double always holds.
 * Integers are returned unchanged, so exact large integers stay exact.
 */
export function roundForDisplay(value: number): number {
  if (Number.isInteger(value) || !Number.isFinite(value)) return value;
  const rounded = Number(value.toPrecision(15));
  return rounded === 0 ? 0 : rounded;
}

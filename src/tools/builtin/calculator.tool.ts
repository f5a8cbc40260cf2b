import { Injectable } from '@nestjs/common';
import { Tool, ToolResult, type ToolHandler, type ToolParameters } from '../tool.decorator.js';
import { evaluate, ExpressionError, roundForDisplay } from './arithmetic.js';

export interface CalculatorArgs {
  expression: string;
}

export interface CalculatorOutput {
  expression: string;
  result: number;
}

export const CALCULATOR_PARAMETERS = {
  type: 'object',
  properties: {
    expression: {
      type: 'string',
      description:
        'The expression, e.g. "(1.5 + 2) * 3^2 / 4". Operators: + - * / % (remainder) ^ (power, right-associative), unary minus, parentheses; numbers may be decimals or scientific (1e3). No functions or variables.',
    },
  },
  required: ['expression'],
  additionalProperties: false,
} as const satisfies ToolParameters;

/** `calculator`: exact-as-doubles arithmetic without eval (see arithmetic.ts). */
@Injectable()
@Tool({
  name: 'calculator',
  description:
    'Evaluate an arithmetic expression and return the number. Use it for any calculation instead of doing arithmetic yourself.',
  parameters: CALCULATOR_PARAMETERS,
})
export class CalculatorTool implements ToolHandler<CalculatorArgs> {
  async run(args: CalculatorArgs): Promise<CalculatorOutput | ToolResult> {
    try {
      return { expression: args.expression, result: roundForDisplay(evaluate(args.expression)) };
    } catch (error) {
      if (error instanceof ExpressionError) return ToolResult.error(error.message);
      throw error;
    }
  }
}

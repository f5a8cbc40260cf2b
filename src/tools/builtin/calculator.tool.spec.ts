import { describe, expect, it } from 'vitest';
import { ToolResult } from '../tool.decorator.js';
import { CalculatorTool } from './calculator.tool.js';

describe(CalculatorTool.name, () => {
  const sut = new CalculatorTool();

  it('returns the expression and its result', async () => {
    expect(await sut.run({ expression: '(1.5 + 2) * 3^2 / 4' })).toEqual({
      expression: '(1.5 + 2) * 3^2 / 4',
      result: 7.875,
    });
  });

  it('rounds away binary floating-point noise', async () => {
    expect(await sut.run({ expression: '0.1 + 0.2' })).toEqual({ expression: '0.1 + 0.2', result: 0.3 });
  });

  it('turns an expression error into an error result the model sees', async () => {
    const result = await sut.run({ expression: '1 / (2 - 2)' });
    expect(result).toBeInstanceOf(ToolResult);
    expect(result).toMatchObject({ status: 'error', output: 'division by zero at position 3' });
  });

  it('never evaluates code', async () => {
    const result = await sut.run({ expression: 'process.exit(1)' });
    expect(result).toMatchObject({ status: 'error', output: "unexpected character 'p' at position 1" });
  });
});

import { describe, expect, it } from 'vitest';
import { ToolCallAccumulator } from './tool-call-accumulator.js';

describe(ToolCallAccumulator.name, () => {
  it('joins argument fragments per index, in index order', () => {
    const sut = new ToolCallAccumulator();
    sut.add([{ index: 1, id: 'b', type: 'function', function: { name: 'two', arguments: '' } }]);
    sut.add([{ index: 0, id: 'a', type: 'function', function: { name: 'one', arguments: '{"x"' } }]);
    sut.add([
      { index: 0, function: { arguments: ':1}' } },
      { index: 1, function: { arguments: '{}' } },
    ]);
    expect(sut.finish((i) => `gen-${i}`)).toEqual([
      { id: 'a', type: 'function', function: { name: 'one', arguments: '{"x":1}' } },
      { id: 'b', type: 'function', function: { name: 'two', arguments: '{}' } },
    ]);
  });

  it('reads empty arguments as {} and fills a missing id', () => {
    const sut = new ToolCallAccumulator();
    sut.add([{ index: 0, function: { name: 'get_time' } }]);
    expect(sut.finish((i) => `gen-${i}`)).toEqual([
      { id: 'gen-0', type: 'function', function: { name: 'get_time', arguments: '{}' } },
    ]);
  });

  it('keeps arguments that are not JSON as they came, for the runner to report', () => {
    const sut = new ToolCallAccumulator();
    sut.add([{ index: 0, id: 'c', function: { name: 'f', arguments: '{"broken' } }]);
    expect(sut.finish(() => 'x')[0].function.arguments).toBe('{"broken');
  });
});

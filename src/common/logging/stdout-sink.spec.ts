import { execFileSync } from 'node:child_process';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { bufferedStdout } from './stdout-sink.js';

describe('bufferedStdout', () => {
  afterEach(() => vi.restoreAllMocks());

  it('writes the lines of one event-loop turn in one write, in order', async () => {
    const write = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const sink = bufferedStdout();
    sink('a\n');
    sink('b\n');
    expect(write).not.toHaveBeenCalled();
    await nextTurn();
    sink('c\n');
    await nextTurn();
    expect(write.mock.calls.map((call) => call[0])).toEqual(['a\nb\n', 'c\n']);
  });

  it('shares one buffer between loggers, so their lines keep their order', async () => {
    const write = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const first = bufferedStdout();
    const second = bufferedStdout();
    first('1\n');
    second('2\n');
    first('3\n');
    await nextTurn();
    expect(write.mock.calls.map((call) => call[0])).toEqual(['1\n2\n3\n']);
  });

  it('loses no line when the process exits right after logging', () => {
    const script = [
      "import { bufferedStdout } from './src/common/logging/stdout-sink.ts';",
      'const sink = bufferedStdout();',
      "sink('first\\n'); sink('last\\n');",
      'process.exit(0);',
    ].join('\n');
    const output = execFileSync(
      process.execPath,
      ['--import', './scripts/register-ts.mjs', '--input-type=module', '-e', script],
      { encoding: 'utf8' },
    );
    expect(output).toBe('first\nlast\n');
  });
});

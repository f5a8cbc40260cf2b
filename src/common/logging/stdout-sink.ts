import { writeSync } from 'node:fs';

/**
 * A sink that writes log lines to stdout once per turn of the event loop instead of once per line:
 * under load every request logs a line, and each write is a syscall. Whatever is still buffered
 * when the process exits is written synchronously, so no line is lost on shutdown or a crash.
 */
export function bufferedStdout(): (line: string) => void {
  let buffered: string[] = [];
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    if (buffered.length === 0) return;
    const text = buffered.join('');
    buffered = [];
    process.stdout.write(text);
  };
  process.once('exit', () => {
    if (buffered.length === 0) return;
    const text = buffered.join('');
    buffered = [];
    try {
      writeSync(1, text);
    } catch {
      // stdout is gone; nothing else can be done with these lines.
    }
  });
  return (line) => {
    buffered.push(line);
    if (scheduled) return;
    scheduled = true;
    setImmediate(flush);
  };
}

import { writeSync } from 'node:fs';

/** Lines not written yet; one buffer for the process, as there is one stdout. */
let buffered: string[] = [];
let scheduled = false;
let exitHooked = false;

function take(): string {
  const text = buffered.join('');
  buffered = [];
  return text;
}

function flush(): void {
  scheduled = false;
  if (buffered.length > 0) process.stdout.write(take());
}

function flushAtExit(): void {
  if (buffered.length === 0) return;
  try {
    writeSync(1, take());
  } catch {
    // stdout is gone; nothing else can be done with these lines.
  }
}

function writeLine(line: string): void {
  buffered.push(line);
  if (scheduled) return;
  scheduled = true;
  setImmediate(flush);
}

/**
 * A sink that writes log lines to stdout once per turn of the event loop instead of once per line:
 * under load every request logs a line, and each write is a syscall. Whatever is still buffered
 * when the process exits is written synchronously, so no line is lost on shutdown or a crash.
 * Every logger shares it, in order, with one exit hook for the process.
 */
export function bufferedStdout(): (line: string) => void {
  if (!exitHooked) {
    exitHooked = true;
    process.once('exit', flushAtExit);
  }
  return writeLine;
}

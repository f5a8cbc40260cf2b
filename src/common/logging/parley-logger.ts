import { LoggerService } from '@nestjs/common';
import { pino, type Logger as PinoLogger } from 'pino';
import type { LogFormat, LogLevel } from '../../config/app-config.js';
import { bufferedStdout } from './stdout-sink.js';

const LEVEL_RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

type Sink = (line: string) => void;

/**
 * Nest's logger, in two formats: `text` prints `[INFO] message` lines (what people read in a
 * terminal), `json` prints one pino object per line (what log shippers read).
 */
export class ParleyLogger implements LoggerService {
  private readonly minRank: number;
  private readonly json?: PinoLogger;

  constructor(
    private readonly format: LogFormat,
    level: LogLevel,
    private readonly sink: Sink = bufferedStdout(),
  ) {
    this.minRank = LEVEL_RANK[level];
    if (format === 'json') {
      this.json = pino(
        { level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime },
        { write: (line: string) => this.sink(line) },
      );
    }
  }

  log(message: unknown, context?: string): void {
    this.write('info', message, context);
  }
  error(message: unknown, ...rest: unknown[]): void {
    const context =
      rest.length > 0 && typeof rest[rest.length - 1] === 'string' ? (rest.at(-1) as string) : undefined;
    this.write('error', message, context);
  }
  warn(message: unknown, context?: string): void {
    this.write('warn', message, context);
  }
  debug(message: unknown, context?: string): void {
    this.write('debug', message, context);
  }
  verbose(message: unknown, context?: string): void {
    this.write('debug', message, context);
  }
  fatal(message: unknown, context?: string): void {
    this.write('error', message, context);
  }

  private write(level: LogLevel, message: unknown, context?: string): void {
    if (LEVEL_RANK[level] < this.minRank) return;
    const text =
      message instanceof Error
        ? (message.stack ?? message.message)
        : typeof message === 'string'
          ? message
          : JSON.stringify(message);
    if (this.json) {
      this.json[level]({ context }, text);
      return;
    }
    this.sink(`[${level.toUpperCase()}] ${text}\n`);
  }
}

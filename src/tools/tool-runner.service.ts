import { Inject, Injectable, Logger } from '@nestjs/common';
import type { AppConfig } from '../config/app-config.js';
import { APP_CONFIG } from '../config/config.module.js';
import { describeSchemaErrors, ToolRegistry } from './tool-registry.service.js';
import { type ToolContext, ToolResult } from './tool.decorator.js';

/** Outputs above this many UTF-8 bytes are cut, with a marker saying so. */
export const MAX_TOOL_OUTPUT_BYTES = 64 * 1024;

/** One tool call as the model made it (`arguments` is the raw JSON text the model wrote). */
export interface ToolCall {
  id: string;
  name: string;
  arguments: string;
}

/** Who the call runs for, and the request's abort signal. The runner adds the timeout and deadline. */
export type ToolRunContext = Omit<ToolContext, 'deadline' | 'signal'> & {
  signal: AbortSignal;
  /** The tools the request enabled; a registered tool outside them is "no such tool". Default: all. */
  enabled?: ReadonlySet<string>;
};

/** What goes back to the model as the `tool` message, and is persisted with its status. */
export interface ToolOutcome {
  toolCallId: string;
  name: string;
  status: 'success' | 'error';
  output: string;
}

type Stop = 'timeout' | 'aborted';

const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Runs one tool call: parses and validates the arguments, runs the tool under a timeout and the
 * request's abort signal, and turns every failure into an error outcome the model sees. Never
 * throws; never waits past the timeout, even for a tool that ignores its signal.
 */
@Injectable()
export class ToolRunner {
  private readonly logger = new Logger('Tools');

  constructor(
    private readonly registry: ToolRegistry,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async run(call: ToolCall, ctx: ToolRunContext): Promise<ToolOutcome> {
    const fail = (message: string): ToolOutcome =>
      outcome(call, 'error', `Tool ${call.name} failed: ${message}`);
    try {
      const tool = ctx.enabled && !ctx.enabled.has(call.name) ? undefined : this.registry.get(call.name);
      if (!tool) return fail('no such tool');

      let args: unknown;
      try {
        // Models stream `""` (or nothing at all) for a call without arguments.
        const raw = typeof call.arguments === 'string' ? call.arguments : '';
        args = raw.trim() === '' ? {} : JSON.parse(raw);
      } catch (error) {
        return fail(`arguments are not valid JSON: ${errorMessage(error)}`);
      }
      if (!tool.validate(args))
        return fail(`invalid arguments: ${describeSchemaErrors(tool.validate.errors)}`);
      if (ctx.signal.aborted) return fail('aborted: the request was cancelled');

      // setTimeout fires at once for delays above 2^31-1 ms.
      const timeoutMs = Math.min(tool.timeoutMs ?? this.config.toolTimeoutMs, MAX_TIMER_MS);
      const controller = new AbortController();
      let stop: Stop | undefined;
      const halt = (why: Stop, reason: unknown): void => {
        stop ??= why;
        controller.abort(reason);
      };
      const onRequestAbort = (): void => halt('aborted', ctx.signal.reason);
      ctx.signal.addEventListener('abort', onRequestAbort, { once: true });
      const timer = setTimeout(
        () => halt('timeout', new DOMException(`Tool ${tool.name} timed out`, 'TimeoutError')),
        timeoutMs,
      );
      const stopped = new Promise<never>((_, reject) => {
        controller.signal.addEventListener('abort', () => reject(new Error('stopped')), { once: true });
      });

      try {
        const toolContext: ToolContext = {
          tenantId: ctx.tenantId,
          userId: ctx.userId,
          signal: controller.signal,
          deadline: Date.now() + timeoutMs,
        };
        // Wrapped so that a synchronous throw from run() is caught like a rejection.
        const running = (async () => tool.handler.run(args, toolContext))();
        const result = await Promise.race([running, stopped]);
        return toOutcome(call, result);
      } catch (error) {
        if (stop === 'timeout') return fail(`timed out after ${timeoutMs} ms`);
        if (stop === 'aborted') return fail('aborted: the request was cancelled');
        this.logger.warn(
          `Tool ${tool.name} failed for tenant ${ctx.tenantId}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
        );
        return fail(errorMessage(error));
      } finally {
        clearTimeout(timer);
        ctx.signal.removeEventListener('abort', onRequestAbort);
      }
    } catch (error) {
      // Nothing above should throw; if it does, the model still gets an answer and the loop goes on.
      this.logger.error(`Tool runner error for ${call.name}: ${errorMessage(error)}`);
      return fail(`internal error: ${errorMessage(error)}`);
    }
  }
}

function toOutcome(call: ToolCall, result: unknown): ToolOutcome {
  if (result instanceof ToolResult) {
    if (result.status === 'error') {
      return outcome(call, 'error', `Tool ${call.name} failed: ${stringify(result.output)}`);
    }
    return outcome(call, 'success', stringify(result.output));
  }
  return outcome(call, 'success', stringify(result));
}

function outcome(call: ToolCall, status: ToolOutcome['status'], output: string): ToolOutcome {
  return { toolCallId: call.id, name: call.name, status, output: truncate(output, MAX_TOOL_OUTPUT_BYTES) };
}

/** A string as is; anything else JSON-encoded (`undefined` as `null`). Throws on what JSON cannot hold. */
function stringify(value: unknown): string {
  if (typeof value === 'string') return value;
  try {
    return JSON.stringify(value) ?? 'null';
  } catch (error) {
    throw new Error(`the output is not JSON-serialisable: ${errorMessage(error)}`, { cause: error });
  }
}

/** Cuts `text` to at most `maxBytes` UTF-8 bytes, marker included, never inside a character. */
export function truncate(text: string, maxBytes: number): string {
  // A UTF-16 code unit is at most 3 UTF-8 bytes: short strings need no measuring.
  if (text.length * 3 <= maxBytes) return text;
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= maxBytes) return text;
  const marker = `\n[output truncated: ${bytes.length} bytes, showing the first `;
  const markerEnd = ']';
  // Room for the marker with a number of up to 10 digits.
  let cut = Math.max(0, maxBytes - Buffer.byteLength(marker) - 10 - markerEnd.length);
  while (cut > 0 && (bytes[cut] & 0xc0) === 0x80) cut--; // back to a character boundary
  return `${bytes.subarray(0, cut).toString('utf8')}${marker}${cut}${markerEnd}`;
}

function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  return typeof error === 'string' ? error : 'unknown error';
}

import { DiscoveryService } from '@nestjs/core';

/**
 * The JSON Schema of a tool's arguments, as OpenAI's function `parameters`: always an object
 * schema at the top (`{ type: 'object', properties: {...}, required: [...] }`). Any JSON Schema
 * (draft-07) keyword is allowed below; unknown keywords are rejected at start-up, so a typo such
 * as `propertes` cannot silently accept anything.
 */
export interface ToolParameters {
  type: 'object';
  [keyword: string]: unknown;
}

export interface ToolOptions {
  /** The function name the model calls: `^[a-zA-Z0-9_-]{1,64}$`, unique across the app. */
  name: string;
  /** What the tool does and when to use it: the model reads this to decide whether to call it. */
  description: string;
  /** JSON Schema of the arguments; the runner validates every call against it before `run`. */
  parameters: ToolParameters;
  /** Per-call time limit; defaults to the `TOOL_TIMEOUT_MS` configuration (10 s). */
  timeoutMs?: number;
}

/** What a tool knows about the call it serves. */
export interface ToolContext {
  tenantId: string;
  userId: string;
  /** Aborted when the call times out or the request is cancelled: pass it to fetch, SDKs, queries. */
  signal: AbortSignal;
  /** When the call times out, epoch milliseconds. */
  deadline: number;
}

/**
 * An explicit result: `ToolResult.error(message)` is a failure the model sees (status `error`)
 * without throwing; `ToolResult.success(output)` is the same as returning `output` directly.
 */
export class ToolResult {
  private constructor(
    readonly status: 'success' | 'error',
    readonly output: unknown,
  ) {}

  static success(output: string | object): ToolResult {
    return new ToolResult('success', output);
  }

  /** A failure the model should see, e.g. "unknown time zone". Becomes `Tool <name> failed: <message>`. */
  static error(message: string): ToolResult {
    return new ToolResult('error', message);
  }
}

/**
 * A server-side tool. Return a string (sent to the model as is), any JSON-serialisable object
 * (sent JSON-encoded) or a ToolResult. A thrown error becomes an error output the model sees.
 */
export interface ToolHandler<Args = unknown> {
  run(args: Args, ctx: ToolContext): Promise<ToolResult | string | object>;
}

/**
 * Marks an `@Injectable()` class implementing ToolHandler as a server-side tool. List the class in
 * any module's `providers`; ToolRegistry finds it at start-up (see docs/adding-a-tool.md).
 *
 *     @Injectable()
 *     @Tool({ name: 'get_time', description: '...', parameters: { type: 'object', properties: {} } })
 *     export class ClockTool implements ToolHandler<GetTimeArgs> { async run(args, ctx) { ... } }
 */
export const Tool = DiscoveryService.createDecorator<ToolOptions>();

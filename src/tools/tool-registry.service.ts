import { Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { ChatCompletionFunctionTool, ChatCompletionTool } from 'openai/resources/chat/completions';
import { errorMessage } from '../common/errors/error-message.js';
import { Tool, type ToolHandler, type ToolOptions, type ToolParameters } from './tool.decorator.js';

type ProviderWrapper = ReturnType<DiscoveryService['getProviders']>[number];

/** OpenAI's rule for function names. */
export const TOOL_NAME_PATTERN = /^[a-zA-Z0-9_-]{1,64}$/;

/** A discovered, validated tool. Its `parameters` are a frozen copy of the declared schema. */
export interface RegisteredTool {
  readonly name: string;
  readonly description: string;
  readonly parameters: Readonly<ToolParameters>;
  /** The tool's own limit, if it declared one (the runner falls back to the configured default). */
  readonly timeoutMs?: number;
  readonly handler: ToolHandler;
  /** The compiled `parameters` schema; `validate.errors` holds what was wrong after a failed call. */
  readonly validate: ValidateFunction;
  /** The owning class, for messages. */
  readonly className: string;
}

export interface ToolExpansion {
  /** What to send upstream as `tools`: registered specs for server-side tools, client specs as given. */
  tools: ChatCompletionTool[];
  /** Names of the tools Parley runs itself; any other tool call goes back to the client. */
  serverSide: Set<string>;
}

/** A tool that cannot be registered: thrown from `onModuleInit`, so the application does not start. */
export class ToolDefinitionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ToolDefinitionError';
  }
}

// ajv-formats is CommonJS whose `module.exports` is also its `default`; `.default` works for both views.
const addFormats = addFormatsModule.default;

/** Draft-07 JSON Schema, strict about unknown keywords and formats, all errors reported. */
function createAjv(): Ajv {
  const ajv = new Ajv({
    allErrors: true,
    strictSchema: true,
    strictNumbers: true,
    strictTypes: false,
    strictTuples: false,
    strictRequired: false,
    allowUnionTypes: true,
    // Tool schemas are private to their tool: two may use the same `$id` without clashing.
    addUsedSchema: false,
  });
  addFormats(ajv);
  return ajv;
}

/**
 * Every `@Tool()` provider of the application, found through Nest's DiscoveryService at start-up
 * and validated there: a bad tool stops the application with a message naming it.
 */
@Injectable()
export class ToolRegistry implements OnModuleInit {
  private readonly logger = new Logger('Tools');
  private readonly tools = new Map<string, RegisteredTool>();
  private readonly ajv = createAjv();

  constructor(private readonly discovery: DiscoveryService) {}

  onModuleInit(): void {
    const seenClasses = new Set<unknown>();
    for (const wrapper of this.discovery.getProviders({ metadataKey: Tool.KEY })) {
      const instance = wrapper.instance as unknown;
      const cls = (instance as object | undefined)?.constructor ?? wrapper.metatype;
      // The same class listed in the providers of two modules is one tool, not a duplicate.
      if (seenClasses.has(cls)) continue;
      seenClasses.add(cls);
      const tool = this.register(
        wrapper,
        instance,
        typeof cls === 'function' ? cls.name : String(wrapper.name),
      );
      this.tools.set(tool.name, tool);
    }
    this.logger.log(`Registered ${this.tools.size} tool(s): ${this.names().join(', ') || '(none)'}`);
  }

  has(name: string): boolean {
    return this.tools.has(name);
  }

  get(name: string): RegisteredTool | undefined {
    return this.tools.get(name);
  }

  /** Registered tool names, in discovery order. */
  names(): string[] {
    return [...this.tools.keys()];
  }

  /**
   * OpenAI function specs of the named tools (all tools when `names` is omitted), in the order
   * asked, each once; names that are not registered are ignored.
   */
  specs(names?: readonly string[]): ChatCompletionFunctionTool[] {
    const wanted = names ? new Set(names) : this.tools.keys();
    const specs: ChatCompletionFunctionTool[] = [];
    for (const name of wanted) {
      const tool = this.tools.get(name);
      if (tool) specs.push(toSpec(tool));
    }
    return specs;
  }

  /**
   * Resolves a request's `tools`: `toolNames` (the string form) expand to the registered specs,
   * unknown names ignored; a full function spec whose name is registered is a server-side tool
   * and is sent with the registered schema, not the client's; any other full spec is a client
   * tool, passed through untouched. Each name appears once (the first occurrence wins, names
   * before full specs).
   */
  expand(toolNames: readonly string[], fullSpecs: readonly ChatCompletionTool[]): ToolExpansion {
    const tools: ChatCompletionTool[] = [];
    const serverSide = new Set<string>();
    const seen = new Set<string>();
    for (const name of toolNames) {
      const tool = this.tools.get(name);
      if (!tool || seen.has(name)) continue;
      seen.add(name);
      serverSide.add(name);
      tools.push(toSpec(tool));
    }
    for (const spec of fullSpecs) {
      const name = specName(spec);
      if (name !== undefined) {
        if (seen.has(name)) continue;
        seen.add(name);
      }
      const tool = spec.type === 'function' && name !== undefined ? this.tools.get(name) : undefined;
      if (tool) {
        serverSide.add(tool.name);
        tools.push(toSpec(tool));
      } else {
        tools.push(spec);
      }
    }
    return { tools, serverSide };
  }

  private register(wrapper: ProviderWrapper, instance: unknown, className: string): RegisteredTool {
    const options = (this.discovery.getMetadataByDecorator(Tool, wrapper) ?? {}) as Partial<ToolOptions>;
    const { name, description, parameters, timeoutMs } = options;
    if (typeof name !== 'string' || !TOOL_NAME_PATTERN.test(name)) {
      const shown = typeof name === 'string' ? `"${name}"` : String(name);
      throw new ToolDefinitionError(
        `Invalid tool ${shown} (class ${className}): the name must match ${TOOL_NAME_PATTERN.source}`,
      );
    }
    const fail = (problem: string): ToolDefinitionError =>
      new ToolDefinitionError(`Invalid tool "${name}" (class ${className}): ${problem}`);

    const existing = this.tools.get(name);
    if (existing) throw fail(`the name is already used by class ${existing.className}`);
    if (!wrapper.isDependencyTreeStatic() || wrapper.isTransient) {
      throw fail('tools must be singletons; request-scoped or transient providers are not supported');
    }
    if (typeof instance !== 'object' || instance === null) throw fail('no instance was created for it');
    if (typeof (instance as Partial<ToolHandler>).run !== 'function') {
      throw fail('it has no run(args, ctx) method (implement ToolHandler)');
    }
    if (typeof description !== 'string' || description.trim() === '') {
      throw fail('the description must be a non-empty string');
    }
    if (timeoutMs !== undefined && (!Number.isInteger(timeoutMs) || timeoutMs <= 0)) {
      throw fail(`timeoutMs must be a positive integer, got ${String(timeoutMs)}`);
    }
    const schema = this.compileParameters(parameters, fail);
    return {
      name,
      description,
      parameters: schema.parameters,
      timeoutMs,
      handler: instance as ToolHandler,
      validate: schema.validate,
      className,
    };
  }

  private compileParameters(
    parameters: unknown,
    fail: (problem: string) => ToolDefinitionError,
  ): { parameters: Readonly<ToolParameters>; validate: ValidateFunction } {
    if (typeof parameters !== 'object' || parameters === null || Array.isArray(parameters)) {
      throw fail('parameters must be a JSON Schema object');
    }
    if ((parameters as { type?: unknown }).type !== 'object') {
      throw fail(`parameters must be an object schema (type: 'object'), as OpenAI requires for functions`);
    }
    if ('$async' in parameters) throw fail('parameters must not be an $async schema');
    let copy: ToolParameters;
    try {
      // What is sent upstream is JSON: validate calls against exactly that.
      copy = JSON.parse(JSON.stringify(parameters)) as ToolParameters;
    } catch (error) {
      throw fail(`parameters must be plain JSON: ${errorMessage(error)}`);
    }
    let validate: ValidateFunction;
    try {
      validate = this.ajv.compile(copy);
    } catch (error) {
      throw fail(`parameters is not a valid JSON Schema: ${errorMessage(error)}`);
    }
    return { parameters: deepFreeze(copy), validate };
  }
}

function toSpec(tool: RegisteredTool): ChatCompletionFunctionTool {
  return {
    type: 'function',
    function: { name: tool.name, description: tool.description, parameters: tool.parameters },
  };
}

function specName(spec: ChatCompletionTool): string | undefined {
  const name: unknown =
    spec.type === 'function'
      ? (spec.function as { name?: unknown } | undefined)?.name
      : (spec.custom as { name?: unknown } | undefined)?.name;
  return typeof name === 'string' ? name : undefined;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/** Ajv errors as one line a model can act on: `/unit must be equal to one of the allowed values (c, f)`. */
export function describeSchemaErrors(errors: readonly ErrorObject[] | null | undefined): string {
  if (!errors || errors.length === 0) return 'arguments do not match the schema';
  const lines = errors.map((error) => {
    const where = error.instancePath === '' ? '(root)' : error.instancePath;
    const params = error.params as Record<string, unknown>;
    let detail = '';
    if (error.keyword === 'additionalProperties') detail = ` ('${String(params.additionalProperty)}')`;
    else if (error.keyword === 'enum' && Array.isArray(params.allowedValues)) {
      detail = ` (${params.allowedValues.map((v) => JSON.stringify(v)).join(', ')})`;
    }
    return `${where} ${error.message ?? 'is invalid'}${detail}`;
  });
  return [...new Set(lines)].join('; ');
}

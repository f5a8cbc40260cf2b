import { ParleyError } from '../../common/errors/parley-error.js';
import { UNPARSABLE_BODY, unparsableBody } from '../../common/http/http-hooks.js';
import type { UpstreamChatRequest } from '../../providers/provider-adapter.js';
import type { ChatRequest, ParleyOptions } from './chat-request.types.js';

export const REASONING_EFFORTS = ['none', 'minimal', 'low', 'medium', 'high', 'xhigh'] as const;
export const VERBOSITIES = ['low', 'medium', 'high'] as const;
export const MAX_IMAGE_BYTES = 8 * 1024 * 1024;

const ROLES = ['system', 'developer', 'user', 'assistant', 'tool', 'function'] as const;
const AUDIO_FORMATS = ['wav', 'mp3'] as const;
const IMAGE_DETAILS = ['auto', 'low', 'high'] as const;
const TOOL_CHOICES = ['none', 'auto', 'required'] as const;
const FUNCTION_NAME = /^[a-zA-Z0-9_-]{1,64}$/;

/** Parley's fields: never sent upstream. `previous_response_id` is handled on its own. */
const PARLEY_FIELDS = new Set([
  'conversation_id',
  'provider_id',
  'provider',
  'system_prompt',
  'active_system_prompt_id',
  'streamingEnabled',
  'toolsEnabled',
  'qualityLevel',
  'researchMode',
  'provider_stream',
  'providerStream',
  'stream',
  'previous_response_id',
]);

type Obj = Record<string, unknown>;

const invalid = (param: string, message: string): ParleyError => ParleyError.invalid(param, message);

function isObject(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

function expectString(value: unknown, param: string, { nonEmpty = false, max = Infinity } = {}): string {
  if (typeof value !== 'string') throw invalid(param, `'${param}' must be a string, got ${describe(value)}.`);
  if (nonEmpty && value.length === 0) throw invalid(param, `'${param}' must not be empty.`);
  if (value.length > max) throw invalid(param, `'${param}' must be at most ${max} characters.`);
  return value;
}

function optionalString(body: Obj, key: string, param = key): string | undefined {
  return body[key] === undefined || body[key] === null ? undefined : expectString(body[key], param);
}

function optionalBoolean(body: Obj, key: string, param = key): boolean | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean')
    throw invalid(param, `'${param}' must be a boolean, got ${describe(value)}.`);
  return value;
}

function checkNumber(body: Obj, key: string, min: number, max: number, integer = false): void {
  const value = body[key];
  if (value === undefined || value === null) return;
  if (typeof value !== 'number' || !Number.isFinite(value) || (integer && !Number.isInteger(value))) {
    throw invalid(key, `'${key}' must be ${integer ? 'an integer' : 'a number'}, got ${describe(value)}.`);
  }
  if (value < min || value > max) {
    throw invalid(key, `'${key}' must be between ${min} and ${max}, got ${value}.`);
  }
}

function checkEnum<T extends string>(value: unknown, allowed: readonly T[], param: string): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw invalid(param, `Invalid ${param}. Must be one of ${allowed.join(', ')}.`);
  }
  return value as T;
}

/** Decoded size of a base64 data URL, without decoding it. */
function dataUrlBytes(url: string): number {
  const comma = url.indexOf(',');
  if (!url.startsWith('data:') || comma < 0) return 0;
  const header = url.slice(5, comma);
  const payload = url.length - comma - 1;
  if (!header.endsWith(';base64')) return payload;
  const padding = url.endsWith('==') ? 2 : url.endsWith('=') ? 1 : 0;
  return Math.floor((payload * 3) / 4) - padding;
}

function checkTextParts(content: unknown[], param: string, allowRefusal = false): void {
  content.forEach((part, j) => {
    const p = `${param}[${j}]`;
    if (!isObject(part)) throw invalid(p, `'${p}' must be an object, got ${describe(part)}.`);
    if (part.type === 'text') {
      expectString(part.text, `${p}.text`);
    } else if (allowRefusal && part.type === 'refusal') {
      expectString(part.refusal, `${p}.refusal`);
    } else {
      throw invalid(
        param,
        `'${param}' may only contain text parts; part ${j} is of type ${JSON.stringify(part.type)}.`,
      );
    }
  });
}

/** Text-only content: a string, or an array of `text` parts. */
function checkTextContent(
  content: unknown,
  param: string,
  { nullable = false, allowRefusal = false } = {},
): void {
  if (typeof content === 'string') return;
  if (content === null && nullable) return;
  if (Array.isArray(content)) return checkTextParts(content, param, allowRefusal);
  throw invalid(param, `'${param}' must be a string or an array of text parts, got ${describe(content)}.`);
}

/** User content: text, image_url, input_audio and file parts, in order; oversized images dropped. */
function checkUserContent(content: unknown, param: string, warnings: string[]): unknown {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) {
    throw invalid(
      param,
      `'${param}' must be a string or an array of content parts, got ${describe(content)}.`,
    );
  }
  const kept: unknown[] = [];
  content.forEach((part, j) => {
    const p = `${param}[${j}]`;
    if (!isObject(part)) throw invalid(p, `'${p}' must be an object, got ${describe(part)}.`);
    switch (part.type) {
      case 'text':
        expectString(part.text, `${p}.text`);
        break;
      case 'image_url': {
        if (!isObject(part.image_url)) throw invalid(`${p}.image_url`, `'${p}.image_url' must be an object.`);
        const url = expectString(part.image_url.url, `${p}.image_url.url`, { nonEmpty: true });
        if (part.image_url.detail !== undefined)
          checkEnum(part.image_url.detail, IMAGE_DETAILS, `${p}.image_url.detail`);
        const bytes = dataUrlBytes(url);
        if (bytes > MAX_IMAGE_BYTES) {
          warnings.push(`Dropped ${p}: the image is ${bytes} bytes, over the ${MAX_IMAGE_BYTES}-byte limit.`);
          return;
        }
        break;
      }
      case 'input_audio': {
        if (!isObject(part.input_audio))
          throw invalid(`${p}.input_audio`, `'${p}.input_audio' must be an object.`);
        expectString(part.input_audio.data, `${p}.input_audio.data`, { nonEmpty: true });
        checkEnum(part.input_audio.format, AUDIO_FORMATS, `${p}.input_audio.format`);
        break;
      }
      case 'file': {
        if (!isObject(part.file)) throw invalid(`${p}.file`, `'${p}.file' must be an object.`);
        const { file_id: fileId, file_data: fileData, filename } = part.file;
        if (fileId === undefined && fileData === undefined) {
          throw invalid(`${p}.file`, `'${p}.file' needs file_id or file_data.`);
        }
        if (fileId !== undefined) expectString(fileId, `${p}.file.file_id`, { nonEmpty: true });
        if (fileData !== undefined) expectString(fileData, `${p}.file.file_data`, { nonEmpty: true });
        if (filename !== undefined) expectString(filename, `${p}.file.filename`);
        break;
      }
      default:
        throw invalid(
          `${p}.type`,
          `Invalid '${p}.type': ${JSON.stringify(part.type)}. Must be one of text, image_url, input_audio, file.`,
        );
    }
    kept.push(part);
  });
  return kept;
}

function checkToolCalls(value: unknown, param: string): void {
  if (!Array.isArray(value)) throw invalid(param, `'${param}' must be an array, got ${describe(value)}.`);
  value.forEach((call, k) => {
    const p = `${param}[${k}]`;
    if (!isObject(call)) throw invalid(p, `'${p}' must be an object.`);
    expectString(call.id, `${p}.id`, { nonEmpty: true });
    if (call.type !== 'function') throw invalid(`${p}.type`, `'${p}.type' must be 'function'.`);
    if (!isObject(call.function)) throw invalid(`${p}.function`, `'${p}.function' must be an object.`);
    expectString(call.function.name, `${p}.function.name`, { nonEmpty: true });
    expectString(call.function.arguments, `${p}.function.arguments`);
  });
}

function checkMessages(value: unknown, warnings: string[]): unknown[] {
  if (!Array.isArray(value))
    throw invalid('messages', `'messages' must be an array, got ${describe(value)}.`);
  if (value.length === 0) throw invalid('messages', "'messages' must contain at least one message.");
  return value.map((message, i) => {
    const p = `messages[${i}]`;
    if (!isObject(message)) throw invalid(p, `'${p}' must be an object, got ${describe(message)}.`);
    const role = checkEnum(message.role, ROLES, `${p}.role`);
    if (message.name !== undefined) expectString(message.name, `${p}.name`);
    switch (role) {
      case 'system':
      case 'developer':
        checkTextContent(message.content, `${p}.content`);
        return message;
      case 'user': {
        const content = checkUserContent(message.content, `${p}.content`, warnings);
        return content === message.content ? message : { ...message, content };
      }
      case 'assistant':
        if (message.content !== undefined) {
          checkTextContent(message.content, `${p}.content`, { nullable: true, allowRefusal: true });
        }
        if (message.tool_calls !== undefined && message.tool_calls !== null) {
          checkToolCalls(message.tool_calls, `${p}.tool_calls`);
        }
        return message;
      case 'tool':
        expectString(message.tool_call_id, `${p}.tool_call_id`, { nonEmpty: true });
        checkTextContent(message.content, `${p}.content`);
        return message;
      case 'function':
        expectString(message.name, `${p}.name`, { nonEmpty: true });
        if (message.content !== null) expectString(message.content, `${p}.content`);
        return message;
    }
  });
}

function checkTools(value: unknown): { specs: unknown[]; names: string[] } {
  if (!Array.isArray(value)) throw invalid('tools', `'tools' must be an array, got ${describe(value)}.`);
  const specs: unknown[] = [];
  const names: string[] = [];
  value.forEach((tool, i) => {
    const p = `tools[${i}]`;
    if (typeof tool === 'string') {
      names.push(tool);
      return;
    }
    if (!isObject(tool))
      throw invalid(p, `'${p}' must be a tool name or a tool object, got ${describe(tool)}.`);
    if (tool.type !== 'function') throw invalid(`${p}.type`, `'${p}.type' must be 'function'.`);
    if (!isObject(tool.function)) throw invalid(`${p}.function`, `'${p}.function' must be an object.`);
    const name = expectString(tool.function.name, `${p}.function.name`);
    if (!FUNCTION_NAME.test(name)) {
      throw invalid(`${p}.function.name`, `'${p}.function.name' must match ${FUNCTION_NAME.source}.`);
    }
    if (tool.function.description !== undefined)
      expectString(tool.function.description, `${p}.function.description`);
    if (tool.function.parameters !== undefined && !isObject(tool.function.parameters)) {
      throw invalid(`${p}.function.parameters`, `'${p}.function.parameters' must be a JSON Schema object.`);
    }
    specs.push(tool);
  });
  return { specs, names };
}

function checkToolChoice(value: unknown): void {
  if (typeof value === 'string') {
    checkEnum(value, TOOL_CHOICES, 'tool_choice');
    return;
  }
  if (!isObject(value) || value.type !== 'function' || !isObject(value.function)) {
    throw invalid(
      'tool_choice',
      "'tool_choice' must be none, auto, required or {type: 'function', function: {name}}.",
    );
  }
  expectString(value.function.name, 'tool_choice.function.name', { nonEmpty: true });
}

function checkResponseFormat(value: unknown): void {
  if (!isObject(value)) throw invalid('response_format', "'response_format' must be an object.");
  const type = checkEnum(value.type, ['text', 'json_object', 'json_schema'] as const, 'response_format.type');
  if (type !== 'json_schema') return;
  const schema = value.json_schema;
  if (!isObject(schema)) {
    throw invalid(
      'response_format.json_schema',
      "'response_format.json_schema' is required when type is json_schema.",
    );
  }
  const name = expectString(schema.name, 'response_format.json_schema.name');
  if (!FUNCTION_NAME.test(name)) {
    throw invalid(
      'response_format.json_schema.name',
      "'response_format.json_schema.name' must be 1 to 64 letters, digits, underscores or dashes.",
    );
  }
  if (schema.schema !== undefined && !isObject(schema.schema)) {
    throw invalid(
      'response_format.json_schema.schema',
      "'response_format.json_schema.schema' must be an object.",
    );
  }
  if (schema.strict !== undefined && schema.strict !== null && typeof schema.strict !== 'boolean') {
    throw invalid(
      'response_format.json_schema.strict',
      "'response_format.json_schema.strict' must be a boolean.",
    );
  }
}

function checkStop(value: unknown): void {
  if (value === undefined || value === null || typeof value === 'string') return;
  if (Array.isArray(value) && value.length <= 4 && value.every((s) => typeof s === 'string')) return;
  throw invalid('stop', "'stop' must be a string or an array of up to 4 strings.");
}

function checkMetadata(value: unknown): void {
  if (value === undefined || value === null) return;
  if (!isObject(value)) throw invalid('metadata', "'metadata' must be an object of strings.");
  const entries = Object.entries(value);
  if (entries.length > 16) throw invalid('metadata', "'metadata' may have at most 16 keys.");
  for (const [key, v] of entries) {
    if (typeof v !== 'string') throw invalid(`metadata.${key}`, `'metadata.${key}' must be a string.`);
  }
}

function parleyOptions(body: Obj): ParleyOptions {
  const providerStream = optionalBoolean(body, 'provider_stream') ?? optionalBoolean(body, 'providerStream');
  const activeId = body.active_system_prompt_id;
  return {
    conversationId: optionalString(body, 'conversation_id'),
    providerId: optionalString(body, 'provider_id') ?? optionalString(body, 'provider'),
    systemPrompt: optionalString(body, 'system_prompt'),
    activeSystemPromptId: activeId === null ? null : optionalString(body, 'active_system_prompt_id'),
    providerStream,
    hints: {
      streamingEnabled: optionalBoolean(body, 'streamingEnabled'),
      toolsEnabled: optionalBoolean(body, 'toolsEnabled'),
      qualityLevel: optionalString(body, 'qualityLevel'),
      researchMode: optionalBoolean(body, 'researchMode'),
    },
  };
}

/**
 * Checks a Chat Completions body against the contract's rules and splits it into what goes
 * upstream and Parley's own options. Every failure is a 400 naming the field; nothing here throws
 * anything else, whatever the input.
 */
export function validateChatRequest(body: unknown): ChatRequest {
  if (body === UNPARSABLE_BODY) throw unparsableBody();
  if (!isObject(body)) {
    throw new ParleyError(
      'invalid_request_error',
      `The request body must be a JSON object, got ${describe(body)}.`,
    );
  }
  const warnings: string[] = [];
  const messages = checkMessages(body.messages, warnings);
  if (body.model !== undefined && body.model !== null)
    expectString(body.model, 'model', { nonEmpty: true, max: 256 });
  const stream = optionalBoolean(body, 'stream');
  let includeUsage = false;
  if (body.stream_options !== undefined && body.stream_options !== null) {
    if (!isObject(body.stream_options))
      throw invalid('stream_options', "'stream_options' must be an object.");
    includeUsage =
      optionalBoolean(body.stream_options, 'include_usage', 'stream_options.include_usage') ?? false;
  }
  const tools = body.tools === undefined || body.tools === null ? undefined : checkTools(body.tools);
  if (body.tool_choice !== undefined && body.tool_choice !== null) checkToolChoice(body.tool_choice);
  if (body.response_format !== undefined && body.response_format !== null)
    checkResponseFormat(body.response_format);
  if (body.reasoning_effort !== undefined && body.reasoning_effort !== null) {
    checkEnum(body.reasoning_effort, REASONING_EFFORTS, 'reasoning_effort');
  }
  if (body.verbosity !== undefined && body.verbosity !== null)
    checkEnum(body.verbosity, VERBOSITIES, 'verbosity');
  checkNumber(body, 'n', 1, 128, true);
  checkNumber(body, 'temperature', 0, 2);
  checkNumber(body, 'top_p', 0, 1);
  checkNumber(body, 'top_logprobs', 0, 20, true);
  checkNumber(body, 'presence_penalty', -2, 2);
  checkNumber(body, 'frequency_penalty', -2, 2);
  checkNumber(body, 'max_tokens', 1, Number.MAX_SAFE_INTEGER, true);
  checkNumber(body, 'max_completion_tokens', 1, Number.MAX_SAFE_INTEGER, true);
  checkNumber(body, 'seed', Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, true);
  optionalBoolean(body, 'logprobs');
  optionalBoolean(body, 'parallel_tool_calls');
  optionalBoolean(body, 'store');
  if (body.user !== undefined) expectString(body.user, 'user');
  checkStop(body.stop);
  checkMetadata(body.metadata);
  if (body.logit_bias !== undefined && body.logit_bias !== null && !isObject(body.logit_bias)) {
    throw invalid('logit_bias', "'logit_bias' must be an object.");
  }

  const upstream: Obj = {};
  for (const [key, value] of Object.entries(body)) {
    if (!PARLEY_FIELDS.has(key) && value !== undefined) upstream[key] = value;
  }
  upstream.messages = messages;
  if (tools) {
    if (tools.specs.length > 0) upstream.tools = tools.specs;
    else delete upstream.tools;
  }
  delete upstream.stream_options;
  const previousResponseId = optionalString(body, 'previous_response_id');
  if (previousResponseId !== undefined) upstream.previous_response_id = previousResponseId;

  return {
    // Validated field by field above; the SDK type is the wire shape those checks enforce.
    upstream: upstream as unknown as UpstreamChatRequest,
    stream,
    includeUsage,
    toolNames: tools?.names ?? [],
    parley: parleyOptions(body),
    warnings,
  };
}

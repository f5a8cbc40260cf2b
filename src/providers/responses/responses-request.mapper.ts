import type {
  ChatCompletionAssistantMessageParam,
  ChatCompletionContentPart,
  ChatCompletionContentPartRefusal,
  ChatCompletionContentPartText,
  ChatCompletionMessageParam,
  ChatCompletionTool,
  ChatCompletionToolChoiceOption,
  ChatCompletionUserMessageParam,
} from 'openai/resources/chat/completions';
import type {
  EasyInputMessage,
  FunctionTool,
  ResponseCreateParamsBase,
  ResponseCreateParamsNonStreaming,
  ResponseCreateParamsStreaming,
  ResponseFormatTextConfig,
  ResponseInputContent,
  ResponseInputItem,
  ToolChoiceAllowed,
  ToolChoiceFunction,
  ToolChoiceOptions,
} from 'openai/resources/responses/responses';
import type {
  ResponseFormatJSONObject,
  ResponseFormatJSONSchema,
  ResponseFormatText,
} from 'openai/resources/shared';
import { ParleyError } from '../../common/errors/parley-error.js';
import type { UpstreamChatRequest } from '../provider-adapter.js';

/**
 * Chat Completions request -> Responses request. Pure: no Nest, no I/O.
 *
 * Every top-level key of the request is either mapped, a known no-op (a value that changes
 * nothing, such as `n: 1`), or rejected with a 400 `unsupported_parameter` naming it: nothing is
 * dropped silently (contract section 3). `RULES` is typed over every key of the SDK's request
 * type, so a key the SDK adds later fails compilation here until it is given a rule.
 */
export function toResponsesRequest(
  request: UpstreamChatRequest,
  options: { stream: true },
): ResponseCreateParamsStreaming;
export function toResponsesRequest(
  request: UpstreamChatRequest,
  options: { stream: false },
): ResponseCreateParamsNonStreaming;
export function toResponsesRequest(
  request: UpstreamChatRequest,
  options: { stream: boolean },
): ResponseCreateParamsStreaming | ResponseCreateParamsNonStreaming;
export function toResponsesRequest(
  request: UpstreamChatRequest,
  options: { stream: boolean },
): ResponseCreateParamsStreaming | ResponseCreateParamsNonStreaming {
  const ctx: MapContext = { request, stream: options.stream, out: {} };
  for (const key of Object.keys(request)) {
    if (isRuleKey(key)) {
      applyRule(key, ctx);
    } else if (!RUNTIME_NO_OPS.has(key)) {
      throw unsupported(key, `The Responses API provider does not support \`${key}\`.`);
    }
  }
  return options.stream ? { ...ctx.out, stream: true } : { ...ctx.out, stream: false };
}

// -------------------------------------------------------------------------------------------------
// Top-level keys

type RequestKey = keyof UpstreamChatRequest;

interface MapContext {
  readonly request: UpstreamChatRequest;
  readonly stream: boolean;
  out: ResponseCreateParamsBase;
}

/** Receives the key's value, never null or undefined (those are absent values: nothing to map). */
type Rule<K extends RequestKey> = (value: NonNullable<UpstreamChatRequest[K]>, ctx: MapContext) => void;

/** Rejects the key unless `isNoOp(value)`: a value that leaves the behaviour as if the key were absent. */
function rejectUnless<K extends RequestKey>(
  key: K,
  isNoOp: (value: NonNullable<UpstreamChatRequest[K]>) => boolean,
  message: string,
): Rule<K> {
  return (value) => {
    if (!isNoOp(value)) throw unsupported(key, message);
  };
}

type RuleTable = { [K in RequestKey]: Rule<K> };

const RULES: RuleTable = {
  messages: (messages, ctx) => mapMessages(messages, ctx.out),
  model: (model, ctx) => {
    ctx.out.model = model;
  },
  previous_response_id: (id, ctx) => {
    ctx.out.previous_response_id = id;
  },

  // Same name and meaning on both wires.
  temperature: (v, ctx) => {
    ctx.out.temperature = v;
  },
  top_p: (v, ctx) => {
    ctx.out.top_p = v;
  },
  parallel_tool_calls: (v, ctx) => {
    ctx.out.parallel_tool_calls = v;
  },
  metadata: (v, ctx) => {
    ctx.out.metadata = v;
  },
  user: (v, ctx) => {
    ctx.out.user = v;
  },
  store: (v, ctx) => {
    ctx.out.store = v;
  },
  service_tier: (v, ctx) => {
    ctx.out.service_tier = v;
  },
  prompt_cache_key: (v, ctx) => {
    ctx.out.prompt_cache_key = v;
  },
  prompt_cache_options: (v, ctx) => {
    ctx.out.prompt_cache_options = v;
  },
  prompt_cache_retention: (v, ctx) => {
    ctx.out.prompt_cache_retention = v;
  },
  safety_identifier: (v, ctx) => {
    ctx.out.safety_identifier = v;
  },
  moderation: (v, ctx) => {
    ctx.out.moderation = v;
  },

  // Renamed or reshaped.
  max_completion_tokens: (v, ctx) => {
    ctx.out.max_output_tokens = v;
  },
  max_tokens: (v, ctx) => {
    // The newer `max_completion_tokens` wins when both are given.
    if (ctx.request.max_completion_tokens == null) ctx.out.max_output_tokens = v;
  },
  reasoning_effort: (effort, ctx) => {
    ctx.out.reasoning = { ...ctx.out.reasoning, effort };
  },
  verbosity: (verbosity, ctx) => {
    ctx.out.text = { ...ctx.out.text, verbosity };
  },
  response_format: (format, ctx) => {
    ctx.out.text = { ...ctx.out.text, format: mapResponseFormat(format) };
  },
  tools: (tools, ctx) => {
    ctx.out.tools = tools.map((tool, i) => mapTool(tool, i));
  },
  tool_choice: (choice, ctx) => {
    ctx.out.tool_choice = mapToolChoice(choice);
  },
  stream_options: ({ include_usage: _includeUsage, include_obfuscation, ...rest }, ctx) => {
    // `include_usage` is moot: a Responses stream always ends with the usage in `response.completed`.
    const unknown = Object.keys(rest)[0];
    if (unknown !== undefined) {
      throw unsupported(
        `stream_options.${unknown}`,
        `The Responses API provider does not support \`stream_options.${unknown}\`.`,
      );
    }
    if (ctx.stream && include_obfuscation !== undefined) ctx.out.stream_options = { include_obfuscation };
  },

  // Values that change nothing are accepted; anything else has no Responses equivalent.
  n: (n) => {
    if (n === 1) return;
    throw unsupported(
      'n',
      n > 1
        ? 'The Responses API provider does not support `n` > 1.'
        : 'The Responses API provider supports only `n` = 1.',
    );
  },
  logprobs: rejectUnless(
    'logprobs',
    (v) => v === false,
    'The Responses API provider does not support `logprobs`.',
  ),
  top_logprobs: rejectUnless(
    'top_logprobs',
    (v) => v === 0,
    'The Responses API provider does not support `top_logprobs` (log probabilities are not returned).',
  ),
  presence_penalty: rejectUnless(
    'presence_penalty',
    (v) => v === 0,
    'The Responses API provider does not support a non-zero `presence_penalty`.',
  ),
  frequency_penalty: rejectUnless(
    'frequency_penalty',
    (v) => v === 0,
    'The Responses API provider does not support a non-zero `frequency_penalty`.',
  ),
  stop: rejectUnless(
    'stop',
    (v) => (Array.isArray(v) ? v.length === 0 : v === ''),
    'The Responses API provider does not support `stop` sequences.',
  ),
  logit_bias: rejectUnless(
    'logit_bias',
    (v) => Object.keys(v).length === 0,
    'The Responses API provider does not support `logit_bias`.',
  ),
  modalities: rejectUnless(
    'modalities',
    (v) => !v.includes('audio'),
    'The Responses API provider does not support audio output (`modalities` with `audio`).',
  ),
  audio: rejectUnless(
    'audio',
    () => false,
    'The Responses API provider does not support audio output (`audio`).',
  ),
  seed: rejectUnless('seed', () => false, 'The Responses API provider does not support `seed`.'),
  functions: rejectUnless(
    'functions',
    (v) => v.length === 0,
    'The Responses API provider does not support the legacy `functions`; use `tools`.',
  ),
  function_call: rejectUnless(
    'function_call',
    () => false,
    'The Responses API provider does not support the legacy `function_call`; use `tool_choice`.',
  ),
  prediction: rejectUnless(
    'prediction',
    () => false,
    'The Responses API provider does not support `prediction`.',
  ),
  web_search_options: rejectUnless(
    'web_search_options',
    () => false,
    'The Responses API provider does not support `web_search_options`.',
  ),
};

/**
 * Keys outside the SDK's request type that are known to change nothing here: `stream` is decided
 * by the adapter call (`options.stream`), whatever the body said.
 */
const RUNTIME_NO_OPS: ReadonlySet<string> = new Set(['stream']);

function isRuleKey(key: string): key is RequestKey {
  return Object.prototype.hasOwnProperty.call(RULES, key);
}

function applyRule<K extends RequestKey>(key: K, ctx: MapContext): void {
  const value = ctx.request[key];
  if (value === undefined || value === null) return;
  const rule: RuleTable[K] = RULES[key];
  rule(value, ctx);
}

function unsupported(param: string, message: string): ParleyError {
  return new ParleyError('unsupported_parameter', message, { param });
}

// -------------------------------------------------------------------------------------------------
// Messages: system/developer -> instructions, the rest -> input items in order

function mapMessages(messages: ChatCompletionMessageParam[], out: ResponseCreateParamsBase): void {
  const instructions: string[] = [];
  const input: ResponseInputItem[] = [];
  messages.forEach((message, i) => {
    const at = `messages[${i}]`;
    switch (message.role) {
      case 'system':
      case 'developer':
        rejectName(message, at);
        instructions.push(...instructionTexts(message.content, at));
        break;
      case 'user':
        rejectName(message, at);
        input.push(userMessage(message, at));
        break;
      case 'assistant':
        input.push(...assistantItems(message, at));
        break;
      case 'tool':
        input.push({
          type: 'function_call_output',
          call_id: message.tool_call_id,
          output: joinText(message.content),
        });
        break;
      case 'function':
        throw unsupported(
          `${at}.role`,
          'The Responses API provider does not support the legacy `function` role; use `tool` messages.',
        );
      default: {
        const role: unknown = (message as { role: unknown }).role;
        throw unsupported(
          `${at}.role`,
          `The Responses API provider does not support the role \`${String(role)}\`.`,
        );
      }
    }
  });
  if (instructions.length > 0) out.instructions = instructions.join('\n');
  out.input = input;
}

/** A participant `name` has no Responses equivalent and would change what the model sees. */
function rejectName(message: { name?: string }, at: string): void {
  if (message.name !== undefined) {
    throw unsupported(`${at}.name`, 'The Responses API provider does not support message `name`.');
  }
}

function instructionTexts(content: string | ChatCompletionContentPartText[], at: string): string[] {
  if (typeof content === 'string') return [content];
  return content.map((part, j) => {
    const type: unknown = (part as { type: unknown }).type;
    if (type !== 'text') {
      throw unsupported(
        `${at}.content[${j}]`,
        `System and developer messages take text only, not \`${String(type)}\` content.`,
      );
    }
    return part.text;
  });
}

function userMessage(message: ChatCompletionUserMessageParam, at: string): EasyInputMessage {
  const content: ResponseInputContent[] =
    typeof message.content === 'string'
      ? [{ type: 'input_text', text: message.content }]
      : message.content.map((part, j) => userPart(part, `${at}.content[${j}]`));
  return { type: 'message', role: 'user', content };
}

function userPart(part: ChatCompletionContentPart, at: string): ResponseInputContent {
  const breakpoint = part.prompt_cache_breakpoint
    ? { prompt_cache_breakpoint: part.prompt_cache_breakpoint }
    : {};
  switch (part.type) {
    case 'text':
      return { type: 'input_text', text: part.text, ...breakpoint };
    case 'image_url':
      return {
        type: 'input_image',
        image_url: part.image_url.url,
        detail: part.image_url.detail ?? 'auto',
        ...breakpoint,
      };
    case 'file': {
      const { file_id, file_data, filename } = part.file;
      return {
        type: 'input_file',
        ...(file_id !== undefined ? { file_id } : {}),
        ...(file_data !== undefined ? { file_data } : {}),
        ...(filename !== undefined ? { filename } : {}),
        ...breakpoint,
      };
    }
    case 'input_audio':
      throw unsupported(at, 'The Responses API provider does not support `input_audio` content.');
    default: {
      const type: unknown = (part as { type: unknown }).type;
      throw unsupported(at, `The Responses API provider does not support \`${String(type)}\` content.`);
    }
  }
}

function assistantItems(message: ChatCompletionAssistantMessageParam, at: string): ResponseInputItem[] {
  rejectName(message, at);
  if (message.audio != null) {
    throw unsupported(`${at}.audio`, 'The Responses API provider does not support assistant `audio`.');
  }
  if (message.function_call != null) {
    throw unsupported(
      `${at}.function_call`,
      'The Responses API provider does not support the legacy `function_call`; use `tool_calls`.',
    );
  }
  const items: ResponseInputItem[] = [];
  const text = assistantText(message, at);
  const calls = message.tool_calls ?? [];
  // A turn with only tool calls has no message item; an empty turn is kept as an empty message.
  if (text !== '' || calls.length === 0) items.push({ type: 'message', role: 'assistant', content: text });
  calls.forEach((call, j) => {
    if (call.type !== 'function') {
      throw unsupported(
        `${at}.tool_calls[${j}]`,
        `The Responses API provider does not support \`${call.type}\` tool calls.`,
      );
    }
    items.push({
      type: 'function_call',
      call_id: call.id,
      name: call.function.name,
      arguments: call.function.arguments,
    });
  });
  return items;
}

/** What the assistant said: its text parts, and a refusal as the text it was. */
function assistantText(message: ChatCompletionAssistantMessageParam, at: string): string {
  const content = message.content;
  let text: string;
  if (content == null) text = '';
  else if (typeof content === 'string') text = content;
  else {
    text = content
      .map((part: ChatCompletionContentPartText | ChatCompletionContentPartRefusal, j) => {
        if (part.type === 'text') return part.text;
        if (part.type === 'refusal') return part.refusal;
        const type: unknown = (part as { type: unknown }).type;
        throw unsupported(
          `${at}.content[${j}]`,
          `Assistant messages take text only, not \`${String(type)}\` content.`,
        );
      })
      .join('');
  }
  return text === '' && message.refusal ? message.refusal : text;
}

function joinText(content: string | ChatCompletionContentPartText[]): string {
  return typeof content === 'string' ? content : content.map((part) => part.text).join('');
}

// -------------------------------------------------------------------------------------------------
// Tools, tool choice, output format

/** A function declared without `parameters` takes none. */
const NO_PARAMETERS = { type: 'object', properties: {}, additionalProperties: false };

function mapTool(tool: ChatCompletionTool, i: number): FunctionTool {
  if (tool.type !== 'function') {
    throw unsupported(`tools[${i}]`, `The Responses API provider does not support \`${tool.type}\` tools.`);
  }
  const { name, description, parameters, strict } = tool.function;
  return {
    type: 'function',
    name,
    ...(description !== undefined ? { description } : {}),
    parameters: parameters ?? NO_PARAMETERS,
    // Chat Completions defaults to non-strict; Responses would default to strict.
    strict: strict ?? false,
  };
}

function mapToolChoice(
  choice: ChatCompletionToolChoiceOption,
): ToolChoiceOptions | ToolChoiceFunction | ToolChoiceAllowed {
  if (typeof choice === 'string') return choice;
  switch (choice.type) {
    case 'function':
      return { type: 'function', name: choice.function.name };
    case 'allowed_tools':
      return {
        type: 'allowed_tools',
        mode: choice.allowed_tools.mode,
        tools: choice.allowed_tools.tools.map((tool, j) => mapAllowedTool(tool, j)),
      };
    case 'custom':
      throw unsupported('tool_choice', 'The Responses API provider does not support `custom` tool choices.');
  }
}

/** `{type:'function', function:{name}}` -> `{type:'function', name}`. */
function mapAllowedTool(tool: { [key: string]: unknown }, j: number): { type: 'function'; name: string } {
  const fn = tool.function;
  if (tool.type === 'function' && typeof fn === 'object' && fn !== null) {
    const name = (fn as { name?: unknown }).name;
    if (typeof name === 'string') return { type: 'function', name };
  }
  throw unsupported(
    `tool_choice.allowed_tools.tools[${j}]`,
    'The Responses API provider supports only function tools in `allowed_tools`.',
  );
}

function mapResponseFormat(
  format: ResponseFormatText | ResponseFormatJSONSchema | ResponseFormatJSONObject,
): ResponseFormatTextConfig {
  switch (format.type) {
    case 'text':
      return { type: 'text' };
    case 'json_object':
      return { type: 'json_object' };
    case 'json_schema': {
      const { name, description, schema, strict } = format.json_schema;
      return {
        type: 'json_schema',
        name,
        schema: schema ?? {},
        ...(description !== undefined ? { description } : {}),
        ...(strict !== undefined ? { strict } : {}),
      };
    }
  }
}

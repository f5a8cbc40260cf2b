import type { ApiBodyOptions } from '@nestjs/swagger';

type SchemaObject = NonNullable<Extract<ApiBodyOptions, { schema?: unknown }>['schema']>;

/** The request body as Swagger UI shows it: OpenAI's fields plus Parley's own. */
export const CHAT_COMPLETION_REQUEST_SCHEMA: SchemaObject = {
  type: 'object',
  required: ['messages'],
  properties: {
    model: { type: 'string', description: "Omitted: the tenant's default model", example: 'gpt-4o-mini' },
    messages: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        required: ['role'],
        properties: {
          role: { type: 'string', enum: ['system', 'developer', 'user', 'assistant', 'tool', 'function'] },
          content: {
            oneOf: [{ type: 'string' }, { type: 'array', items: { type: 'object' } }],
            description: 'Text, or content parts (text, image_url, input_audio, file for user messages)',
          },
          tool_calls: { type: 'array', items: { type: 'object' } },
          tool_call_id: { type: 'string' },
          name: { type: 'string' },
        },
      },
      example: [{ role: 'user', content: 'Hello!' }],
    },
    stream: { type: 'boolean', default: false },
    stream_options: { type: 'object', properties: { include_usage: { type: 'boolean' } } },
    tools: {
      type: 'array',
      description: 'Full OpenAI tool specs, or names of server-side tools (e.g. "get_time")',
      items: { oneOf: [{ type: 'string' }, { type: 'object' }] },
    },
    tool_choice: { oneOf: [{ type: 'string', enum: ['none', 'auto', 'required'] }, { type: 'object' }] },
    response_format: { type: 'object', description: 'text, json_object or json_schema' },
    reasoning_effort: { type: 'string', enum: ['none', 'minimal', 'low', 'medium', 'high', 'xhigh'] },
    verbosity: { type: 'string', enum: ['low', 'medium', 'high'] },
    temperature: { type: 'number', minimum: 0, maximum: 2 },
    top_p: { type: 'number', minimum: 0, maximum: 1 },
    n: { type: 'integer', minimum: 1, maximum: 128 },
    max_tokens: { type: 'integer', minimum: 1 },
    max_completion_tokens: { type: 'integer', minimum: 1 },
    conversation_id: {
      type: 'string',
      description: 'Parley: continue a stored conversation (or header x-conversation-id)',
    },
    provider_id: {
      type: 'string',
      description: "Parley: one of the tenant's providers (or header x-provider-id)",
    },
    system_prompt: { type: 'string', description: 'Parley: replaces or inserts the leading system message' },
    active_system_prompt_id: { type: 'string', nullable: true, description: 'Parley: a saved system prompt' },
    provider_stream: { type: 'boolean', description: 'Parley: false calls the provider without streaming' },
    previous_response_id: { type: 'string', description: 'Parley: forwarded to Responses providers only' },
  },
};

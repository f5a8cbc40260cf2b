import addFormatsModule from 'ajv-formats';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';

/** Schemas extracted from OpenAI's OpenAPI document by scripts/extract-openai-schemas.mjs. */
const schemas = JSON.parse(
  readFileSync(new URL('../fixtures/openai-schemas.json', import.meta.url), 'utf8'),
) as {
  $defs: Record<string, object>;
};

export type OpenAiSchema =
  | 'CreateChatCompletionResponse'
  | 'CreateChatCompletionStreamResponse'
  | 'ErrorResponse'
  | 'ListModelsResponse';

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addFormat('unixtime', { type: 'number', validate: (n: number) => Number.isInteger(n) && n >= 0 });
ajv.addSchema({ $id: 'openai', $defs: schemas.$defs });

const validators = new Map<OpenAiSchema, ReturnType<Ajv2020['compile']>>();

function validator(name: OpenAiSchema): ReturnType<Ajv2020['compile']> {
  let v = validators.get(name);
  if (!v) {
    v = ajv.compile({ $ref: `openai#/$defs/${name}` });
    validators.set(name, v);
  }
  return v;
}

/** Asserts a payload validates against OpenAI's schema of that name. */
export function expectConforms(name: OpenAiSchema, payload: unknown): void {
  const validate = validator(name);
  const ok = validate(payload);
  expect(ok, `${name}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(payload)}`).toBe(true);
}

/** Every data frame of a stream but `[DONE]` and the error frame is a valid chunk. */
export function expectStreamConforms(payloads: unknown[]): void {
  for (const payload of payloads) {
    if (payload === '[DONE]') continue;
    if (typeof payload === 'object' && payload !== null && 'error' in payload)
      expectConforms('ErrorResponse', payload);
    else expectConforms('CreateChatCompletionStreamResponse', payload);
  }
}

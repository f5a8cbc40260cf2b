// Extracts the schemas Parley's answers must satisfy from OpenAI's OpenAPI document, with every
// schema they reference, into test/fixtures/openai-schemas.json, so the conformance tests run
// from a fresh clone. Run: node scripts/extract-openai-schemas.mjs [path/to/openai-openapi.yaml]
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const source = process.argv[2] ?? resolve(root, '../shared/spec/openai-openapi.yaml');
const ROOTS = [
  'CreateChatCompletionResponse',
  'CreateChatCompletionStreamResponse',
  'ErrorResponse',
  'ListModelsResponse',
];

const doc = parse(readFileSync(source, 'utf8'), { maxAliasCount: -1 });
const all = doc.components.schemas;
const picked = {};
const queue = [...ROOTS];
while (queue.length > 0) {
  const name = queue.pop();
  if (picked[name]) continue;
  if (!all[name]) throw new Error(`missing schema ${name}`);
  picked[name] = all[name];
  JSON.stringify(all[name], (key, value) => {
    if (key === '$ref' && typeof value === 'string') queue.push(value.split('/').pop());
    return value;
  });
}

// The contract's adjustments for Ajv: nullable as a union with null, no discriminator.
function adjust(node) {
  if (Array.isArray(node)) return node.map(adjust);
  if (node === null || typeof node !== 'object') return node;
  const out = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === 'discriminator' || key === 'nullable' || key === 'x-oaiMeta' || key === 'x-stainless-const')
      continue;
    out[key] = key === '$ref' ? value.replace('#/components/schemas/', '#/$defs/') : adjust(value);
  }
  if (node.nullable === true) {
    if (typeof out.type === 'string') out.type = [out.type, 'null'];
    else return { anyOf: [out, { type: 'null' }] };
    if (Array.isArray(out.enum)) out.enum = [...out.enum, null];
  }
  return out;
}

const defs = Object.fromEntries(
  Object.entries(picked)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => [k, adjust(v)]),
);
writeFileSync(
  resolve(root, 'test/fixtures/openai-schemas.json'),
  JSON.stringify({ source: `openai-openapi.yaml ${doc.info.version}`, roots: ROOTS, $defs: defs }, null, 1) +
    '\n',
);
console.log(`wrote ${Object.keys(defs).length} schemas`);

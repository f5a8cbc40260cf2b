import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { transpile } from './transpile.mjs';

// Source files import each other as `./x.js` (nodenext style); map that to `./x.ts` when only the
// TypeScript file exists.
export async function resolve(specifier, context, nextResolve) {
  if (
    (specifier.startsWith('.') || specifier.startsWith('/')) &&
    specifier.endsWith('.js') &&
    context.parentURL
  ) {
    const tsUrl = new URL(specifier.slice(0, -3) + '.ts', context.parentURL);
    if (tsUrl.protocol === 'file:' && existsSync(fileURLToPath(tsUrl))) {
      return { url: tsUrl.href, shortCircuit: true };
    }
  }
  return nextResolve(specifier, context);
}

export async function load(url, context, nextLoad) {
  if (!url.startsWith('file:') || !url.endsWith('.ts') || url.includes('/node_modules/')) {
    return nextLoad(url, context);
  }
  const filename = fileURLToPath(url);
  const { code, map } = transpile(await readFile(filename, 'utf8'), filename);
  const inlineMap = map
    ? `\n//# sourceMappingURL=data:application/json;base64,${Buffer.from(map).toString('base64')}`
    : '';
  return { format: 'module', source: code + inlineMap, shortCircuit: true };
}

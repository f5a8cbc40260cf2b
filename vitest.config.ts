import type { Plugin } from 'vite';
import { defineConfig } from 'vitest/config';
// @ts-expect-error: a plain ES module shared with scripts/ts-loader.mjs, without type declarations.
import { transpile } from './scripts/transpile.mjs';

/**
 * Vite's esbuild transform drops decorator metadata, which Nest's dependency injection needs:
 * TypeScript's own transpiler compiles the project's .ts files instead.
 */
function typescriptWithDecoratorMetadata(): Plugin {
  return {
    name: 'parley:typescript-decorator-metadata',
    enforce: 'pre',
    transform(source, id) {
      if (!id.endsWith('.ts') || id.includes('/node_modules/')) return null;
      return (transpile as (source: string, fileName: string) => { code: string; map?: string })(source, id);
    },
  };
}

export default defineConfig({
  esbuild: false,
  plugins: [typescriptWithDecoratorMetadata()],
  test: {
    // Each e2e file boots its own app(s) and database; two cores do not gain from more.
    maxWorkers: 2,
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: ['src/**/*.spec.ts'], environment: 'node' },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          include: ['test/**/*.e2e-spec.ts'],
          environment: 'node',
          testTimeout: 30_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});

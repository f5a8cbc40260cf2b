// One TypeScript-to-JavaScript transform for the test runner and the loader: TypeScript's own
// transpileModule, which emits the decorator metadata Nest's dependency injection reads.
import ts from 'typescript';

const compilerOptions = {
  module: ts.ModuleKind.ESNext,
  target: ts.ScriptTarget.ES2022,
  experimentalDecorators: true,
  emitDecoratorMetadata: true,
  useDefineForClassFields: false,
  esModuleInterop: true,
  sourceMap: true,
  inlineSources: true,
};

/** @returns {{ code: string, map: string | undefined }} */
export function transpile(source, fileName) {
  const { outputText, sourceMapText } = ts.transpileModule(source, { compilerOptions, fileName });
  return { code: outputText.replace(/\n\/\/# sourceMappingURL=.*$/, ''), map: sourceMapText };
}

// Lets plain `node` run the TypeScript sources (the upstream simulator, the benchmark, the TypeORM
// CLI on ormconfig.ts) with decorator metadata, through TypeScript's transpiler, without a build.
import { register } from 'node:module';

register('./ts-loader.mjs', import.meta.url);

// Lets plain `node` run the TypeScript sources (the upstream simulator, the benchmark, the TypeORM
// CLI on ormconfig.ts) with decorator metadata, through SWC, without a separate build step.
import { register } from 'node:module';

register('./ts-loader.mjs', import.meta.url);

import { Injectable, Module } from '@nestjs/common';
import { Tool, type ToolContext, type ToolHandler } from '../../src/tools/tool.decorator.js';

/**
 * A team's own tools, in a module of their own outside src/tools, loaded with
 * `createTestApp(env, { extraModules: [TestToolsModule] })`: proves that tools are discovered
 * wherever they are listed, and gives the tool loop a tool that fails.
 */

export const EXPLODE_MESSAGE = 'the reactor is offline';

/** Always throws: the loop must turn that into an error output the model sees. */
@Injectable()
@Tool({
  name: 'explode',
  description: 'A tool that always fails (tests only).',
  parameters: { type: 'object', properties: {}, additionalProperties: false },
})
export class ExplodeTool implements ToolHandler {
  async run(): Promise<string> {
    throw new Error(EXPLODE_MESSAGE);
  }
}

export interface LookupOrderArgs {
  order_id: string;
}

export const LOOKUP_ORDER_DESCRIPTION = 'Look up an order by its id (tests only).';

/** A well-behaved team tool: answers from its arguments and the caller's context. */
@Injectable()
@Tool({
  name: 'lookup_order',
  description: LOOKUP_ORDER_DESCRIPTION,
  parameters: {
    type: 'object',
    properties: { order_id: { type: 'string', minLength: 1 } },
    required: ['order_id'],
    additionalProperties: false,
  },
})
export class LookupOrderTool implements ToolHandler<LookupOrderArgs> {
  async run(args: LookupOrderArgs, ctx: ToolContext): Promise<object> {
    return { order_id: args.order_id, status: 'shipped', tenant: ctx.tenantId, user: ctx.userId };
  }
}

@Module({ providers: [ExplodeTool, LookupOrderTool] })
export class TestToolsModule {}

import { Body, Controller, Headers, HttpCode, Post, Res, UseGuards } from '@nestjs/common';
import { ApiBody, ApiOkResponse, ApiParam, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { map } from 'rxjs';
import { Ctx, type TenantContext } from '../common/context/request-context.js';
import { toFrame } from '../common/sse/sse-frame.js';
import { SseWriter } from '../common/sse/sse-writer.js';
import { TokenBalanceGuard } from '../quota/balance/token-balance.guard.js';
import { TenantRateLimitGuard } from '../quota/rate-limit/tenant-rate-limit.guard.js';
import type { TenantConfig } from '../tenants/tenant-config.types.js';
import { CurrentTenant, TenantScoped } from '../tenants/tenant-scoped.decorator.js';
import { CHAT_COMPLETION_REQUEST_SCHEMA } from './completions.openapi.js';
import { CompletionsService } from './completions.service.js';

@ApiTags('chat')
@TenantScoped()
@Controller()
export class CompletionsController {
  constructor(
    private readonly completions: CompletionsService,
    private readonly sse: SseWriter,
  ) {}

  @Post(['v1/chat/completions', ':tenantId/v1/chat/completions'])
  @HttpCode(200)
  @UseGuards(TenantRateLimitGuard, TokenBalanceGuard)
  @ApiParam({ name: 'tenantId', required: false, description: 'Tenant; omitted on /v1/... routes' })
  @ApiBody({ schema: CHAT_COMPLETION_REQUEST_SCHEMA })
  @ApiOkResponse({
    description: 'A chat.completion object, or an SSE stream of chat.completion.chunk objects',
  })
  async create(
    @Ctx() ctx: TenantContext,
    @CurrentTenant() tenant: TenantConfig,
    @Body() body: unknown,
    @Headers('x-conversation-id') conversationId: string | undefined,
    @Headers('x-provider-id') providerId: string | undefined,
    @Res() res: Response,
  ): Promise<void> {
    const prepared = await this.completions.prepare(ctx, tenant, body, { conversationId, providerId });
    // The client going away aborts the upstream call (res 'close', not req: the request's close
    // fires as soon as the body has been read).
    const abort = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) abort.abort();
    });
    if (prepared.stream) {
      const frames = this.completions
        .stream(prepared, abort.signal)
        .pipe(map((chunk, i) => toFrame(chunk, i + 1)));
      await this.sse.write(res, frames);
      return;
    }
    res.status(200).json(await this.completions.complete(prepared, abort.signal));
  }
}

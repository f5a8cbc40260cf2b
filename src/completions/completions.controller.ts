import { Body, Controller, Get, Headers, HttpCode, Param, Post, Query, Res, UseGuards } from '@nestjs/common';
import {
  ApiBody,
  ApiHeader,
  ApiNoContentResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiParam,
  ApiProduces,
  ApiQuery,
  ApiTags,
} from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { Ctx, type TenantContext } from '../common/context/request-context.js';
import { sendJson } from '../common/http/send-json.js';
import { SseWriter } from '../common/sse/sse-writer.js';
import { TokenBalanceGuard } from '../quota/balance/token-balance.guard.js';
import { type Admission, RequestAdmission } from '../quota/rate-limit/admission.js';
import { TenantRateLimitGuard } from '../quota/rate-limit/tenant-rate-limit.guard.js';
import type { TenantConfig } from '../tenants/tenant-config.types.js';
import { CurrentTenant, TenantScoped } from '../tenants/tenant-scoped.decorator.js';
import { CHAT_COMPLETION_REQUEST_SCHEMA } from './completions.openapi.js';
import { CompletionsService } from './completions.service.js';
import { resumePosition } from './resume/resume-position.js';
import { StreamResumer } from './resume/stream-resumer.service.js';
import { StreamSessions } from './resume/stream-sessions.service.js';

@ApiTags('chat')
@TenantScoped()
@Controller()
export class CompletionsController {
  constructor(
    private readonly completions: CompletionsService,
    private readonly sse: SseWriter,
    private readonly sessions: StreamSessions,
    private readonly resumer: StreamResumer,
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
    @RequestAdmission() admission: Admission,
    @Res() reply: FastifyReply,
  ): Promise<void> {
    try {
      const headers = { conversationId, providerId };
      const prepared = await this.completions.prepare(ctx, tenant, body, headers, admission);
      if (prepared.stream) {
        // The generation belongs to a session, not to this response: a client that goes away can
        // resume it (GET .../:id/stream) within the grace period, on any instance.
        const session = this.sessions.create(prepared, (signal) => this.completions.stream(prepared, signal));
        await this.sse.write(reply, session.live(reply.raw));
        return;
      }
      // The client going away aborts the upstream call (the response's 'close', not the request's:
      // that fires as soon as the body has been read).
      const res = reply.raw;
      const abort = new AbortController();
      res.on('close', () => {
        if (!res.writableFinished) abort.abort();
      });
      sendJson(reply, 200, await this.completions.complete(prepared, abort.signal));
    } catch (e) {
      // The rate limit's verdict may still be on its way; a refusal comes first in the contract's order.
      throw await admission.answerFor(e);
    }
  }

  @Get(['v1/chat/completions/:id/stream', ':tenantId/v1/chat/completions/:id/stream'])
  @ApiParam({ name: 'tenantId', required: false, description: 'Tenant; omitted on /v1/... routes' })
  @ApiParam({ name: 'id', description: 'The completion id (`chatcmpl-...`) every chunk carries' })
  @ApiHeader({
    name: 'Last-Event-ID',
    required: false,
    description: 'The id of the last event received; the stream resumes with the next one',
  })
  @ApiQuery({ name: 'after', required: false, description: 'Same as Last-Event-ID (the header wins)' })
  @ApiProduces('text/event-stream')
  @ApiOkResponse({
    description:
      'The events after that id (all of them without one), then the live rest, then `[DONE]`; the same ' +
      'ids as the original stream',
  })
  @ApiNoContentResponse({ description: 'The stream has ended and the given id is its `[DONE]` (or later)' })
  @ApiNotFoundResponse({ description: "Unknown or expired completion, or someone else's (`not_found`)" })
  async resume(
    @Ctx() ctx: TenantContext,
    @Param('id') id: string,
    @Headers('last-event-id') lastEventId: string | undefined,
    @Query('after') after: unknown,
    @Res() reply: FastifyReply,
  ): Promise<void> {
    const afterId = resumePosition(lastEventId, after);
    const source = await this.resumer.open(ctx, id, afterId, reply.raw);
    if (source.kind === 'finished') {
      void reply.code(204).send();
      return;
    }
    await this.sse.write(reply, source.frames);
  }
}
